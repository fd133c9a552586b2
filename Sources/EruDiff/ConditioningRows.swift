import Diffusion
import Models
import Tensors

/// A batch buffer of transformer text inputs — states `[capacity, L, D]` and pooled `[capacity, P]` —
/// filled row by row from encodings, so a training step assembles its mixed batch (implicit, explicit,
/// unconditional, replay rows) without allocating.
final class ConditioningRows {
    let capacity: Int
    let tokens: Int
    let states: Tensor
    let pooled: Tensor
    private let stateWidth: Int
    private let pooledWidth: Int

    private let guidanceEmbeds: Bool

    /// Rows of `model`'s text input.
    init(capacity: Int, model: FlowModel) {
        let c = model.transformer.config
        self.capacity = capacity
        tokens = model.textTokens
        stateWidth = c.jointAttentionDim
        pooledWidth = c.pooledProjectionDim
        guidanceEmbeds = c.guidanceEmbeds
        states = Tensor(zeros: [capacity, tokens, stateWidth])
        pooled = Tensor(zeros: [capacity, pooledWidth])
    }

    /// Copies prompt `index` of `source` into row `row`.
    func set(_ row: Int, from source: TextConditioning, index: Int) {
        precondition(row < capacity && index < source.count)
        let s = tokens * stateWidth
        (states.data + row * s).update(from: source.states.data + index * s, count: s)
        (pooled.data + row * pooledWidth).update(from: source.pooled.data + index * pooledWidth, count: pooledWidth)
    }

    /// The transformer's input of rows `start ..< start + rows`: those rows of `image` and of these
    /// texts at those `times` (guidance 1 where the model embeds it).
    func input(_ image: Tensor, from start: Int, rows: Int, times: [Float]) -> FluxInput {
        FluxInput(image: image.rowsView(start, rows),
                  text: Tensor(borrowing: states.data + start * tokens * stateWidth, shape: [rows, tokens, stateWidth], owner: states),
                  pooled: Tensor(borrowing: pooled.data + start * pooledWidth, shape: [rows, pooledWidth], owner: pooled),
                  timesteps: Array(times[start..<(start + rows)]), guidance: guidanceEmbeds ? [Float](repeating: 1, count: rows) : nil)
    }
}

extension Tensor {
    /// A view of the first elements with `shape` (no copy).
    func prefixView(_ shape: [Int]) -> Tensor {
        Tensor(borrowing: data, shape: shape, owner: self)
    }

    /// A view of rows `start ..< start + rows` of a `[R, N, C]` tensor (no copy).
    func rowsView(_ start: Int, _ rows: Int) -> Tensor {
        let per = shape.dropFirst().reduce(1, *)
        return Tensor(borrowing: data + start * per, shape: [rows] + Array(shape.dropFirst()), owner: self)
    }
}
