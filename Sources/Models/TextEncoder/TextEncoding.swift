import Tensors

/// The text encoder's view of a batch of prompts.
///
/// `states` are the per-token hidden states (the flow transformer's context tokens, DESIGN §3.1) with
/// padding rows set to zero; `pooled` is the sentence embedding, sentence-transformers' output (the
/// masked mean, L2-normalised when the model's `modules.json` has a `Normalize` step, as
/// all-MiniLM-L6-v2's does) — the flow transformer's pooled input; `meanPooled` is the masked mean
/// before normalising.
public struct TextEncoding {
    /// The token ids and mask that were encoded.
    public let tokens: TokenBatch
    /// `[count, length, hidden]`, zero at padding positions.
    public let states: Tensor
    /// `[count, hidden]`: the attention-masked mean of the real tokens' states.
    public let meanPooled: Tensor
    /// `[count, hidden]`: `meanPooled` divided by its L2 norm (or equal to it for a model without a
    /// `Normalize` module).
    public let pooled: Tensor

    public init(tokens: TokenBatch, states: Tensor, meanPooled: Tensor, pooled: Tensor) {
        self.tokens = tokens
        self.states = states
        self.meanPooled = meanPooled
        self.pooled = pooled
    }

    /// Number of prompts.
    public var count: Int { tokens.count }
    /// Hidden width.
    public var hiddenSize: Int { pooled.shape.last ?? 0 }

    /// The pooled vector of prompt `i` (a copy).
    public func pooled(_ i: Int) -> [Float] { row(pooled, i) }
    /// The mean-pooled vector of prompt `i` (a copy).
    public func meanPooled(_ i: Int) -> [Float] { row(meanPooled, i) }
    /// The states of prompt `i`'s real tokens, `lengths[i] × hidden`, row-major (a copy).
    public func states(_ i: Int) -> [Float] {
        let d = hiddenSize, t = tokens.length
        return Array(UnsafeBufferPointer(start: states.data + i * t * d, count: tokens.lengths[i] * d))
    }

    private func row(_ m: Tensor, _ i: Int) -> [Float] {
        let d = hiddenSize
        return Array(UnsafeBufferPointer(start: m.data + i * d, count: d))
    }
}
