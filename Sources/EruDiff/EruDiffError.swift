import Foundation

/// A problem with the input of an EruDiff procedure, a model folder or a saved state, named so that
/// the caller can fix it.
public enum EruDiffError: Error, CustomStringConvertible, LocalizedError, Sendable {
    /// A parameter out of range or inconsistent with the model.
    case invalidArgument(String)
    /// A model folder that cannot be loaded: the folder and what is wrong.
    case modelFolder(path: String, problem: String)
    /// A saved state (checkpoint, adapter, results) that cannot be resumed from.
    case badState(path: String, problem: String)
    /// A procedure was asked for its result before it finished.
    case notFinished(String)

    public var description: String {
        switch self {
        case let .invalidArgument(s): return "invalid argument: \(s)"
        case let .modelFolder(path, problem): return "model folder \(path): \(problem)"
        case let .badState(path, problem): return "saved state \(path): \(problem)"
        case let .notFinished(what): return "\(what) has not finished"
        }
    }

    public var errorDescription: String? { description }
}
