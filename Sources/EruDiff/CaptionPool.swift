import Diffusion
import Models
import Tensors
import World

/// A fixed set of random explicit captions of the world, encoded once.
///
/// Pretraining draws its captions from this pool so the text encoder runs once per caption rather than
/// once per step; each draw still renders a fresh image from the caption's distribution (position, size
/// and whatever the caption leaves unsaid vary), so the pool bounds only the wording, not the pictures.
public final class CaptionPool {
    /// The captions and the attributes each one states.
    public let captions: [(text: String, attributes: Attributes)]
    /// Context states `[count, textTokens, hidden]` (pads zeroed) and pooled vectors `[count, hidden]`.
    public let encodings: TextConditioning
    /// The empty prompt's encoding (the unconditional input).
    public let unconditional: TextConditioning

    /// Draws `count` captions from `RNG(seed:)` and encodes them `batch` at a time. `progress` is called
    /// with the number encoded so far.
    public init(count: Int, seed: UInt64, encoder: PromptEncoder, textTokens: Int, batch: Int = 256,
                progress: ((Int) -> Void)? = nil) throws {
        precondition(count > 0)
        var rng = RNG(seed: seed)
        var list: [(text: String, attributes: Attributes)] = []
        list.reserveCapacity(count)
        for _ in 0..<count { list.append(Caption.random(&rng)) }
        captions = list
        let empty = try encoder.context([""], length: textTokens)
        let hidden = empty.pooled.shape[1]
        unconditional = try TextConditioning(states: empty.states, pooled: empty.pooled)
        let states = Tensor(zeros: [count, textTokens, hidden])
        let pooled = Tensor(zeros: [count, hidden])
        var done = 0
        while done < count {
            let n = min(batch, count - done)
            let e = try encoder.context(list[done..<done + n].map(\.text), length: textTokens)
            (states.data + done * textTokens * hidden).update(from: e.states.data, count: n * textTokens * hidden)
            (pooled.data + done * hidden).update(from: e.pooled.data, count: n * hidden)
            done += n
            progress?(done)
        }
        encodings = try TextConditioning(states: states, pooled: pooled)
    }

    public var count: Int { captions.count }

    /// The encodings of the captions at `indices`, gathered into `states`/`pooled` buffers of at least
    /// `indices.count` rows, returned as a conditioning of exactly that many prompts.
    public func gather(_ indices: [Int], states: Tensor, pooled: Tensor) throws -> TextConditioning {
        let l = encodings.tokens, h = encodings.pooled.shape[1]
        for (row, i) in indices.enumerated() {
            (states.data + row * l * h).update(from: encodings.states.data + i * l * h, count: l * h)
            (pooled.data + row * h).update(from: encodings.pooled.data + i * h, count: h)
        }
        let n = indices.count
        return try TextConditioning(states: Tensor(borrowing: states.data, shape: [n, l, h], owner: states),
                                    pooled: Tensor(borrowing: pooled.data, shape: [n, h], owner: pooled))
    }
}
