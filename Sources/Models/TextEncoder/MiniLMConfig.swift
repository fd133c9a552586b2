import Foundation

/// The hyper-parameters of a BERT encoder (`config.json`) and the sentence-transformers head
/// (`modules.json`, `1_Pooling/config.json`) of a model folder such as all-MiniLM-L6-v2's.
public struct MiniLMConfig: Equatable, Sendable {
    public var vocabularySize: Int
    public var hiddenSize: Int
    public var layers: Int
    public var heads: Int
    public var intermediateSize: Int
    public var maxPositions: Int
    public var typeVocabularySize: Int
    public var layerNormEps: Float
    /// Whether sentence-transformers L2-normalises the mean-pooled vector (a `Normalize` module).
    public var normalizesPooled: Bool

    /// all-MiniLM-L6-v2's values.
    public static let allMiniLML6v2 = MiniLMConfig(
        vocabularySize: 30522, hiddenSize: 384, layers: 6, heads: 12, intermediateSize: 1536,
        maxPositions: 512, typeVocabularySize: 2, layerNormEps: 1e-12, normalizesPooled: true)

    public init(vocabularySize: Int, hiddenSize: Int, layers: Int, heads: Int, intermediateSize: Int,
                maxPositions: Int, typeVocabularySize: Int, layerNormEps: Float, normalizesPooled: Bool) {
        self.vocabularySize = vocabularySize
        self.hiddenSize = hiddenSize
        self.layers = layers
        self.heads = heads
        self.intermediateSize = intermediateSize
        self.maxPositions = maxPositions
        self.typeVocabularySize = typeVocabularySize
        self.layerNormEps = layerNormEps
        self.normalizesPooled = normalizesPooled
    }

    /// Width of one attention head.
    public var headDim: Int { hiddenSize / heads }

    /// Reads `config.json` (and, when present, `modules.json` and the pooling config) in `folder`.
    /// Throws naming the file when one is missing, malformed, or describes something other than a
    /// BERT encoder with GELU, absolute positions and mean pooling.
    public init(folder: URL) throws {
        let configURL = folder.appendingPathComponent("config.json")
        let json = try Self.readObject(configURL)
        let path = configURL.path
        func int(_ key: String) throws -> Int {
            guard let v = json[key] as? NSNumber, v.doubleValue == v.doubleValue.rounded(), v.intValue > 0 else {
                throw TextEncoderError.invalidFile(path: path, reason: "\"\(key)\" is missing or not a positive integer")
            }
            return v.intValue
        }
        if let type = json["model_type"] as? String, type != "bert" {
            throw TextEncoderError.invalidFile(path: path, reason: "model_type is \"\(type)\", expected \"bert\"")
        }
        if let act = json["hidden_act"] as? String, act != "gelu" {
            throw TextEncoderError.invalidFile(path: path, reason: "hidden_act is \"\(act)\"; only \"gelu\" (erf) is supported")
        }
        if let pos = json["position_embedding_type"] as? String, pos != "absolute" {
            throw TextEncoderError.invalidFile(path: path, reason: "position_embedding_type \"\(pos)\" is not supported")
        }
        vocabularySize = try int("vocab_size")
        hiddenSize = try int("hidden_size")
        layers = try int("num_hidden_layers")
        heads = try int("num_attention_heads")
        intermediateSize = try int("intermediate_size")
        maxPositions = try int("max_position_embeddings")
        typeVocabularySize = try int("type_vocab_size")
        guard hiddenSize % heads == 0 else {
            throw TextEncoderError.invalidFile(path: path, reason: "hidden_size \(hiddenSize) is not a multiple of num_attention_heads \(heads)")
        }
        if let eps = json["layer_norm_eps"] {
            guard let e = eps as? NSNumber, e.doubleValue > 0 else {
                throw TextEncoderError.invalidFile(path: path, reason: "layer_norm_eps is not a positive number")
            }
            layerNormEps = e.floatValue
        } else {
            layerNormEps = 1e-12
        }
        normalizesPooled = try Self.readHead(folder: folder)
    }

    /// Checks the sentence-transformers modules: mean pooling, and whether a `Normalize` module follows.
    private static func readHead(folder: URL) throws -> Bool {
        let modulesURL = folder.appendingPathComponent("modules.json")
        guard FileManager.default.fileExists(atPath: modulesURL.path) else { return false }
        let data = try readData(modulesURL)
        guard let modules = (try? JSONSerialization.jsonObject(with: data)) as? [[String: Any]] else {
            throw TextEncoderError.invalidFile(path: modulesURL.path, reason: "not a JSON array of module objects")
        }
        var normalize = false
        for module in modules {
            let type = module["type"] as? String ?? ""
            if type.hasSuffix(".Normalize") { normalize = true }
            if type.hasSuffix(".Pooling") {
                let sub = module["path"] as? String ?? ""
                let poolURL = folder.appendingPathComponent(sub).appendingPathComponent("config.json")
                guard FileManager.default.fileExists(atPath: poolURL.path) else {
                    throw TextEncoderError.missingFile(path: poolURL.path)
                }
                let pool = try readObject(poolURL)
                let modes = ["pooling_mode_cls_token", "pooling_mode_max_tokens", "pooling_mode_mean_sqrt_len_tokens"]
                guard pool["pooling_mode_mean_tokens"] as? Bool == true,
                      modes.allSatisfy({ (pool[$0] as? Bool) != true }) else {
                    throw TextEncoderError.invalidFile(path: poolURL.path, reason: "only mean-token pooling is supported")
                }
            }
        }
        return normalize
    }

    private static func readData(_ url: URL) throws -> Data {
        guard FileManager.default.fileExists(atPath: url.path) else { throw TextEncoderError.missingFile(path: url.path) }
        do { return try Data(contentsOf: url) } catch {
            throw TextEncoderError.invalidFile(path: url.path, reason: "cannot read: \(error)")
        }
    }

    private static func readObject(_ url: URL) throws -> [String: Any] {
        let data = try readData(url)
        guard let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw TextEncoderError.invalidFile(path: url.path, reason: "not a JSON object")
        }
        return object
    }
}
