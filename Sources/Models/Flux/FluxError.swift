/// Why a FLUX model, checkpoint or adapter could not be used. Every case names the file (or source)
/// and says exactly what is wrong; a checkpoint mismatch lists every offending tensor.
public enum FluxError: Error, CustomStringConvertible, Equatable, Sendable {
    /// A file could not be read or written.
    case io(path: String, problem: String)
    /// A `config.json` / `erudiff.json` that is malformed or inconsistent.
    case invalidConfig(source: String, problem: String)
    /// Tensors that do not fit the config: names it lacks, names it does not know, and wrong shapes.
    case checkpointMismatch(path: String, missing: [String], unexpected: [String], misshaped: [String])
    /// Inputs whose sizes disagree with the model or the workspace.
    case invalidInput(String)

    public var description: String {
        switch self {
        case let .io(path, problem): return "\(path): \(problem)"
        case let .invalidConfig(source, problem): return "\(source): invalid FLUX config: \(problem)"
        case let .checkpointMismatch(path, missing, unexpected, misshaped):
            var parts: [String] = []
            if !missing.isEmpty { parts.append("missing \(missing.count): " + missing.joined(separator: ", ")) }
            if !unexpected.isEmpty { parts.append("unexpected \(unexpected.count): " + unexpected.joined(separator: ", ")) }
            if !misshaped.isEmpty { parts.append("wrong shape \(misshaped.count): " + misshaped.joined(separator: ", ")) }
            return "\(path): tensors do not fit the config — " + parts.joined(separator: "; ")
        case let .invalidInput(problem): return "invalid FLUX input: \(problem)"
        }
    }
}
