/// What loading or querying a knowledge base throws; every case names its source (file path or
/// "bundled knowledge.json") and, for a bad item, its position and id.
public enum KnowledgeBaseError: Error, CustomStringConvertible, Equatable {
    /// The file could not be read.
    case unreadable(path: String, reason: String)
    /// The bundled data file is not where the build puts it, nor in the source tree.
    case resourceMissing(String)
    /// The text is not the knowledge-base JSON format.
    case malformed(source: String, reason: String)
    /// One item breaks a rule (missing field, word outside the vocabulary, caption that does not state
    /// its attributes, …).
    case invalidItem(source: String, index: Int, id: String?, reason: String)
    /// Items disagree with each other (duplicate ids or prompts, a split rule broken).
    case inconsistent(source: String, reason: String)
    /// A prompt-set name that is not one of `KnowledgeBase.setNames`.
    case unknownSet(String)

    public var description: String {
        switch self {
        case let .unreadable(path, reason):
            return "cannot read knowledge base \(path): \(reason)"
        case let .resourceMissing(m):
            return "bundled knowledge base not found: \(m)"
        case let .malformed(source, reason):
            return "\(source): not a knowledge base: \(reason)"
        case let .invalidItem(source, index, id, reason):
            let name = id.map { " (\"\($0)\")" } ?? ""
            return "\(source): item \(index)\(name): \(reason)"
        case let .inconsistent(source, reason):
            return "\(source): \(reason)"
        case let .unknownSet(name):
            return "unknown prompt set \"\(name)\"; known: \(KnowledgeBase.setNames.joined(separator: ", "))"
        }
    }
}
