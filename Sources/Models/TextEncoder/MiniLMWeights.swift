import Foundation
import Tensors

/// The parameters of a BERT encoder, borrowed from a memory-mapped safetensors file (no copy for F32),
/// under transformers' `BertModel` tensor names.
public struct MiniLMWeights {
    /// One encoder layer.
    public struct Layer {
        public let query, queryBias, key, keyBias, value, valueBias: Tensor
        public let attentionOutput, attentionOutputBias: Tensor
        public let attentionNormWeight, attentionNormBias: Tensor
        public let intermediate, intermediateBias: Tensor
        public let output, outputBias: Tensor
        public let outputNormWeight, outputNormBias: Tensor
    }

    public let wordEmbeddings: Tensor
    public let positionEmbeddings: Tensor
    public let tokenTypeEmbeddings: Tensor
    public let embeddingNormWeight: Tensor
    public let embeddingNormBias: Tensor
    public let layers: [Layer]

    /// Loads and checks every tensor the encoder needs against `config`. Throws naming the file for a
    /// damaged file, a missing tensor or a shape that disagrees with `config.json`.
    public init(file url: URL, config: MiniLMConfig) throws {
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw TextEncoderError.missingFile(path: url.path)
        }
        let file: SafeTensors
        do { file = try SafeTensors(contentsOf: url) } catch let e as SafeTensorsError {
            throw TextEncoderError.invalidFile(path: url.path, reason: e.problem)
        }
        // Some exports prefix every name with the architecture ("bert.").
        let prefix = file.contains("embeddings.word_embeddings.weight") ? "" : "bert."
        func load(_ name: String, _ shape: [Int]) throws -> Tensor {
            let full = prefix + name
            guard let entry = file.entries[full] else {
                throw TextEncoderError.invalidFile(path: url.path, reason: "no tensor named '\(name)'")
            }
            guard entry.shape == shape else {
                throw TextEncoderError.invalidFile(
                    path: url.path,
                    reason: "tensor '\(full)' has shape \(entry.shape), but config.json implies \(shape)")
            }
            do { return try file.tensor(named: full) } catch let e as SafeTensorsError {
                throw TextEncoderError.invalidFile(path: url.path, reason: e.problem)
            }
        }
        let d = config.hiddenSize, f = config.intermediateSize
        wordEmbeddings = try load("embeddings.word_embeddings.weight", [config.vocabularySize, d])
        positionEmbeddings = try load("embeddings.position_embeddings.weight", [config.maxPositions, d])
        tokenTypeEmbeddings = try load("embeddings.token_type_embeddings.weight", [config.typeVocabularySize, d])
        embeddingNormWeight = try load("embeddings.LayerNorm.weight", [d])
        embeddingNormBias = try load("embeddings.LayerNorm.bias", [d])
        var layers: [Layer] = []
        for i in 0..<config.layers {
            let p = "encoder.layer.\(i)."
            layers.append(Layer(
                query: try load(p + "attention.self.query.weight", [d, d]),
                queryBias: try load(p + "attention.self.query.bias", [d]),
                key: try load(p + "attention.self.key.weight", [d, d]),
                keyBias: try load(p + "attention.self.key.bias", [d]),
                value: try load(p + "attention.self.value.weight", [d, d]),
                valueBias: try load(p + "attention.self.value.bias", [d]),
                attentionOutput: try load(p + "attention.output.dense.weight", [d, d]),
                attentionOutputBias: try load(p + "attention.output.dense.bias", [d]),
                attentionNormWeight: try load(p + "attention.output.LayerNorm.weight", [d]),
                attentionNormBias: try load(p + "attention.output.LayerNorm.bias", [d]),
                intermediate: try load(p + "intermediate.dense.weight", [f, d]),
                intermediateBias: try load(p + "intermediate.dense.bias", [f]),
                output: try load(p + "output.dense.weight", [d, f]),
                outputBias: try load(p + "output.dense.bias", [d]),
                outputNormWeight: try load(p + "output.LayerNorm.weight", [d]),
                outputNormBias: try load(p + "output.LayerNorm.bias", [d])))
        }
        if file.contains(prefix + "encoder.layer.\(config.layers).attention.self.query.weight") {
            throw TextEncoderError.invalidFile(
                path: url.path, reason: "has more encoder layers than num_hidden_layers = \(config.layers) in config.json")
        }
        self.layers = layers
    }

    /// Bytes of float32 parameters these weights address.
    public var byteCount: Int {
        var n = wordEmbeddings.byteCount + positionEmbeddings.byteCount + tokenTypeEmbeddings.byteCount
            + embeddingNormWeight.byteCount + embeddingNormBias.byteCount
        for l in layers {
            for t in [l.query, l.queryBias, l.key, l.keyBias, l.value, l.valueBias, l.attentionOutput,
                      l.attentionOutputBias, l.attentionNormWeight, l.attentionNormBias, l.intermediate,
                      l.intermediateBias, l.output, l.outputBias, l.outputNormWeight, l.outputNormBias] {
                n += t.byteCount
            }
        }
        return n
    }
}
