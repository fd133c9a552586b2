import Foundation
import Tensors

/// Every linear weight of a model packed once for inference (`PackedWeight`), so sampling does not pay
/// BLAS's per-call repacking of the weights. Built lazily by `FluxTransformer` for inference workspaces
/// and rebuilt when the weights' `generation` moves; training passes use the weights directly.
final class FluxPackedWeights {
    /// The `generation` of the weights these copies were made from.
    let generation: Int
    /// Indexed by `FluxLinearWeights.id`: one piece for a plain linear layer, two (the columns of each
    /// input) for a single-stream block's `proj_out`, which reads `[attention | MLP]`.
    private let pieces: [[PackedWeight]]

    init(_ w: FluxWeights) {
        generation = w.generation
        let c = w.config.innerDim
        let concat = Set(w.singleBlocks.map(\.projOut.id))
        pieces = w.linears.map { l in
            concat.contains(l.id)
                ? [PackedWeight(l.weight, columns: 0..<c), PackedWeight(l.weight, columns: c..<l.inFeatures)]
                : [PackedWeight(l.weight)]
        }
    }

    /// The packed piece(s) of linear layer `id`.
    func pieces(of id: Int) -> [PackedWeight] { pieces[id] }
}

extension FluxTransformer {
    /// The packed copies for the current weights, made (again) when missing or stale; nil when this CPU
    /// has no packed kernel.
    func packedWeights() -> FluxPackedWeights? {
        guard PackedWeight.isAvailable else { return nil }
        packLock.lock()
        defer { packLock.unlock() }
        if let p = packedCache, p.generation == weights.generation { return p }
        packedCache = nil  // free the stale copies before making new ones
        let p = FluxPackedWeights(weights)
        packedCache = p
        return p
    }
}
