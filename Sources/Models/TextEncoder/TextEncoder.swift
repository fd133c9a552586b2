import Foundation
import Tensors

/// Something that turns prompts into text-encoder states: the encoder itself or its cache.
public protocol PromptEncoder: AnyObject {
    /// Tokenizes (truncating to `maxLength` tokens, the tokenizer's default when nil), pads every row to
    /// the longest or to `padTo`, and encodes.
    func encode(_ prompts: [String], maxLength: Int?, padTo: Int?) throws -> TextEncoding
    /// The default number of tokens a prompt is truncated to.
    var maxLength: Int { get }
}

extension PromptEncoder {
    /// Encodes with the default maximum length, padded to the longest prompt.
    public func encode(_ prompts: [String]) throws -> TextEncoding {
        try encode(prompts, maxLength: nil, padTo: nil)
    }

    /// Fixed-length context for the flow transformer (DESIGN §3.1): states `[count, length, hidden]`
    /// with padding positions zero (FLUX has no text mask), and the pooled vector `[count, hidden]`.
    /// Prompts are truncated to `length` tokens (default: `maxLength`).
    public func context(_ prompts: [String], length: Int? = nil) throws -> TextEncoding {
        let l = length ?? maxLength
        return try encode(prompts, maxLength: l, padTo: l)
    }
}

/// all-MiniLM-L6-v2: the WordPiece tokenizer and the BERT encoder together, loaded from a weights folder.
///
/// Frozen, inference only. Thread-safe (the model serialises its calls).
public final class TextEncoder: PromptEncoder, @unchecked Sendable {
    /// Where the weights came from.
    public let folder: URL
    public let config: MiniLMConfig
    public let tokenizer: WordPieceTokenizer
    public let model: MiniLM

    public var maxLength: Int { tokenizer.maxLength }

    /// Finds the weights (`MiniLMLocator`: explicit path, `ERUDIFF_MINILM`, installed package) and loads
    /// them. `maxLength` is the default total token count, `[CLS]` and `[SEP]` included.
    public convenience init(path: String? = nil, maxLength: Int = 32,
                            environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        try self.init(folder: MiniLMLocator.locate(explicit: path, environment: environment), maxLength: maxLength)
    }

    /// Loads the model in `folder`, checking the files against each other. Throws naming the file that
    /// is missing, truncated or inconsistent.
    public init(folder: URL, maxLength: Int = 32) throws {
        let folder = try MiniLMLocator.checked(folder)
        let config = try MiniLMConfig(folder: folder)
        guard maxLength >= 2 && maxLength <= config.maxPositions else {
            throw TextEncoderError.invalidArgument("maxLength \(maxLength) must be in 2...\(config.maxPositions)")
        }
        let vocabURL = folder.appendingPathComponent("vocab.txt")
        let tokenizer = try WordPieceTokenizer(vocabularyFile: vocabURL, maxLength: maxLength)
        guard tokenizer.tokens.count == config.vocabularySize else {
            throw TextEncoderError.invalidFile(
                path: vocabURL.path,
                reason: "has \(tokenizer.tokens.count) tokens, but config.json says vocab_size \(config.vocabularySize)")
        }
        let weights = try MiniLMWeights(file: folder.appendingPathComponent("model.safetensors"), config: config)
        self.folder = folder
        self.config = config
        self.tokenizer = tokenizer
        self.model = MiniLM(config: config, weights: weights)
    }

    public func encode(_ prompts: [String], maxLength: Int? = nil, padTo: Int? = nil) throws -> TextEncoding {
        let limit = maxLength ?? tokenizer.maxLength
        guard limit <= config.maxPositions, (padTo ?? 0) <= config.maxPositions else {
            throw TextEncoderError.invalidArgument("length beyond the model's \(config.maxPositions) positions")
        }
        return try encode(tokens: tokenizer.encode(prompts, maxLength: limit, padTo: padTo))
    }

    /// Encodes already tokenized prompts.
    public func encode(tokens batch: TokenBatch) throws -> TextEncoding {
        let (states, mean) = try model.forward(batch)
        let pooled = mean.copy()
        if config.normalizesPooled {
            let d = config.hiddenSize
            for b in 0..<batch.count { Self.normalize(pooled.data + b * d, count: d) }
        }
        return TextEncoding(tokens: batch, states: states, meanPooled: mean, pooled: pooled)
    }

    /// v ← v / max(‖v‖₂, 1e-12), as `torch.nn.functional.normalize`.
    static func normalize(_ v: UnsafeMutablePointer<Float>, count: Int) {
        var s: Double = 0
        for i in 0..<count { s += Double(v[i]) * Double(v[i]) }
        let inv = Float(1 / max(s.squareRoot(), 1e-12))
        for i in 0..<count { v[i] *= inv }
    }
}
