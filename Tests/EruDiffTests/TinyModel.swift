import Diffusion
import EruDiff
import Foundation
import Models
import Tensors
import World

/// Shared fixtures: the MiniLM text encoder (loaded once) and tiny FLUX transformers whose every
/// weight is random (no zero-initialised output layers, so every LoRA parameter gets a gradient).
enum TinyModel {
    static let encoder: EncodingCache = {
        // The installed all-MiniLM-L6-v2 (scripts/setup), as every text test uses.
        let e = try! TextEncoder(maxLength: 8)
        return EncodingCache(encoder: e, capacity: 4096)
    }()

    /// width 16 (2 heads × 8), one double and one single block, MiniLM text (384).
    static let config = FluxConfig(inChannels: 48, numLayers: 1, numSingleLayers: 1, attentionHeadDim: 8,
                                   numAttentionHeads: 2, jointAttentionDim: 384, pooledProjectionDim: 384,
                                   axesDimsRope: [2, 2, 4])

    /// Random weights: the standard init plus N(0, 0.05²) everywhere it starts at zero.
    static func weights(seed: UInt64 = 7, config: FluxConfig = config) -> FluxWeights {
        let w = FluxWeights.random(config: config, seed: seed)
        var rng = RNG(seed: seed, stream: 5)
        for (_, t) in w.tensors {
            if t.array.allSatisfy({ $0 == 0 }) { rng.fillNormal(t.data, count: t.count, std: 0.05) }
        }
        return w
    }

    /// A model of 32×32 RGB images (64 tokens) with 8 text tokens.
    static func model(seed: UInt64 = 7, imageSize: Int = 32, textTokens: Int = 8,
                      prediction: PredictionTarget = .velocity) throws -> FlowModel {
        try FlowModel(transformer: FluxTransformer(weights: weights(seed: seed)),
                      pipeline: FluxPipelineConfig(imageSize: imageSize, imageChannels: 3, patch: 4, textTokens: textTokens,
                                                   shift: 1, prediction: prediction),
                      encoder: encoder, name: "tiny")
    }

    static let knowledge = try! KnowledgeBase.bundled()

    /// A toy base model: the tiny transformer pretrained for a few hundred flow-matching steps on
    /// renders of random explicit captions (as `Pretraining` does at full size), so that its velocity
    /// depends on the text. Trained once per test process.
    static let trainedWeights: FluxWeights = {
        let w = weights(seed: 11)
        let m = FluxTransformer(weights: w)
        let pk = try! FluxPacking(height: 32, width: 32, channels: 3, patch: 4)
        var o = FlowMatchingTrainer.Options()
        o.learningRate = 3e-3
        let batch = 16
        let trainer = try! FlowMatchingTrainer(model: m, batch: batch, positions: pk.positions(textTokens: 8), options: o, seed: 1)
        var rng = RNG(seed: 12)
        let empty = try! encoder.context([""], length: 8)
        let u = try! TextConditioning(states: empty.states, pooled: empty.pooled)
        let images = Tensor(zeros: [batch, 32, 32, 3])
        // A pool of captions encoded once (the text encoder costs more than a tiny training step).
        let pool = (0..<512).map { _ in Caption.random(&rng) }
        let enc = try! encoder.context(pool.map(\.text), length: 8)
        let states = Tensor(zeros: [batch, 8, 384]), pooled = Tensor(zeros: [batch, 384])
        for _ in 0..<trainedSteps {
            for i in 0..<batch {
                let k = rng.int(below: pool.count)
                Renderer.render(pool[k].attributes, rng: &rng, into: images.data + i * 32 * 32 * 3)
                (states.data + i * 8 * 384).update(from: enc.states.data + k * 8 * 384, count: 8 * 384)
                (pooled.data + i * 384).update(from: enc.pooled.data + k * 384, count: 384)
            }
            _ = try! trainer.step(x0: pk.pack(images), text: TextConditioning(states: states, pooled: pooled), unconditional: u)
        }
        return w
    }()
    static let trainedSteps = 400

    /// A copy of the toy base model (its own weights, so tests cannot disturb each other).
    static func trained(prediction: PredictionTarget = .velocity) throws -> FlowModel {
        try FlowModel(transformer: FluxTransformer(weights: trainedWeights.contiguousCopy()),
                      pipeline: FluxPipelineConfig(imageSize: 32, imageChannels: 3, patch: 4, textTokens: 8, shift: 1,
                                                   prediction: prediction),
                      encoder: encoder, name: "toy")
    }

    /// A fresh temporary folder.
    static func temporaryDirectory(_ name: String) -> URL {
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("erudiff-tests-\(getpid())-\(name)-\(UInt64.random(in: 0...UInt64.max))")
        try! FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// Pairs of the first `n` train items.
    static func trainPairs(_ n: Int) -> [KnowledgePair] {
        Array(knowledge.items(in: .train).prefix(n)).map(KnowledgePair.init)
    }
}
