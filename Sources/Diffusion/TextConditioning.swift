import Models
import Tensors

/// What the text encoder gives the transformer for a batch of prompts: per-token states
/// `[B, L, joint_attention_dim]` (pads zeroed) and pooled vectors `[B, pooled_projection_dim]`.
/// Precomputed encodings (a cache) can be passed around as these.
public struct TextConditioning {
    public var states: Tensor
    public var pooled: Tensor

    public init(states: Tensor, pooled: Tensor) throws {
        guard states.shape.count == 3, pooled.shape.count == 2, states.shape[0] == pooled.shape[0] else {
            throw FluxError.invalidInput("text states \(states.shape) and pooled \(pooled.shape) do not form a batch")
        }
        self.states = states
        self.pooled = pooled
    }

    /// Number of prompts.
    public var count: Int { states.shape[0] }
    /// Tokens per prompt.
    public var tokens: Int { states.shape[1] }

    /// Copies prompt `i` into row `row` of the batch buffers `states`, `pooled`.
    func copy(_ i: Int, intoStates states: Tensor, pooled: Tensor, row: Int) {
        let s = self.states.count / count, p = self.pooled.count / count
        (states.data + row * s).update(from: self.states.data + i * s, count: s)
        (pooled.data + row * p).update(from: self.pooled.data + i * p, count: p)
    }
}
