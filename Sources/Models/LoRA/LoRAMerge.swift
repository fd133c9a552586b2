import Tensors

extension LoRAAdapter {
    /// Adds `scale·B·A` to the weight of every target layer of `weights` (in place): afterwards the
    /// plain weights compute what base + adapter did. Memory-mapped weights are changed in memory only
    /// (the mapping is private), never on disk.
    public func merge(into weights: FluxWeights) {
        precondition(weights.config == config, "LoRA adapter and weights of different configs")
        for l in weights.linears {
            guard let (ta, tb) = pair(forLinear: l.id) else { continue }
            BLAS.sgemm(transA: false, transB: false, m: l.outFeatures, n: l.inFeatures, k: rank, alpha: scale,
                       a: tb.data, lda: rank, b: ta.data, ldb: l.inFeatures, beta: 1, c: l.weight.data,
                       ldc: l.inFeatures)
        }
        weights.markChanged()
    }

    /// A contiguous copy of `weights` with the adapter merged in (export); `weights` are unchanged.
    public func merged(with weights: FluxWeights) -> FluxWeights {
        let copy = weights.contiguousCopy()
        merge(into: copy)
        return copy
    }
}
