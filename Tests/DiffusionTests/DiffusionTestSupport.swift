import Diffusion
import Models
import Tensors

/// A tiny FLUX model (8×8 RGB images packed 2×2 → 16 tokens of 12 channels, width 32) with every weight
/// random and non-zero, and text encodings to drive it.
enum Tiny {
    static let config = FluxConfig(inChannels: 12, numLayers: 1, numSingleLayers: 1, attentionHeadDim: 16,
                                   numAttentionHeads: 2, jointAttentionDim: 24, pooledProjectionDim: 16,
                                   axesDimsRope: [4, 6, 6])
    static let packing = try! FluxPacking(height: 8, width: 8, channels: 3, patch: 2)
    static let textTokens = 5

    static func model(seed: UInt64 = 1) -> FluxTransformer {
        let w = FluxWeights.random(config: config, seed: seed)
        var rng = RNG(seed: seed &+ 100)
        for (name, t) in w.tensors {
            if name.hasSuffix(".bias") || t.shape.count == 1 { continue }
            if t.array.allSatisfy({ $0 == 0 }) {  // the zero-initialised adaLN and output layers
                rng.fillNormal(t.data, count: t.count, std: 0.5 / Float(t.shape[1]).squareRoot())
            }
        }
        return FluxTransformer(weights: w)
    }

    static func text(_ n: Int, seed: UInt64) -> TextConditioning {
        var rng = RNG(seed: seed)
        return try! TextConditioning(states: Tensor.randn([n, textTokens, config.jointAttentionDim], rng: &rng),
                                     pooled: Tensor.randn([n, config.pooledProjectionDim], rng: &rng))
    }

    /// Rows `rows` of a batch of text encodings.
    static func rows(_ t: TextConditioning, _ rows: [Int]) -> TextConditioning {
        let s = t.states.count / t.count, p = t.pooled.count / t.count
        var sv: [Float] = [], pv: [Float] = []
        for r in rows {
            sv += t.states.array[(r * s)..<((r + 1) * s)]
            pv += t.pooled.array[(r * p)..<((r + 1) * p)]
        }
        return try! TextConditioning(states: Tensor(shape: [rows.count] + Array(t.states.shape.dropFirst()), values: sv),
                                     pooled: Tensor(shape: [rows.count, t.pooled.shape[1]], values: pv))
    }
}
