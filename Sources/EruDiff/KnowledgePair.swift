import World

/// An (implicit prompt, explicit anchor prompt) pair that DK-DM aligns and the dislocation measures,
/// with the id and split it is reported under.
public struct KnowledgePair: Codable, Equatable, Hashable, Sendable {
    /// Reported under this key (the item id; the implicit prompt for ad-hoc pairs).
    public var id: String
    public var implicit: String
    public var explicit: String
    /// The split the pair belongs to ("train", "test-paraphrase", "test-concept"; "custom" for ad-hoc).
    public var split: String

    public init(id: String? = nil, implicit: String, explicit: String, split: String = "custom") {
        self.id = id ?? implicit; self.implicit = implicit; self.explicit = explicit; self.split = split
    }

    /// The pair of a knowledge item.
    public init(_ item: KnowledgeItem) {
        self.init(id: item.id, implicit: item.implicit, explicit: item.explicit, split: item.split.rawValue)
    }

    /// Throws when a prompt is empty or the ids are not unique.
    static func validate(_ pairs: [KnowledgePair]) throws {
        guard !pairs.isEmpty else { throw EruDiffError.invalidArgument("no (implicit, explicit) pairs") }
        var ids = Set<String>()
        for p in pairs {
            guard !p.implicit.isEmpty, !p.explicit.isEmpty else {
                throw EruDiffError.invalidArgument("pair '\(p.id)' has an empty prompt")
            }
            guard ids.insert(p.id).inserted else { throw EruDiffError.invalidArgument("two pairs have the id '\(p.id)'") }
        }
    }
}
