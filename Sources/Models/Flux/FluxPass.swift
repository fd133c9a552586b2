import Tensors

/// The context of one forward or backward pass: its workspace, the LoRA adapter in use (nil when off)
/// and where gradients go. Runs the linear layers with their adapters.
struct FluxPass {
    let ws: FluxActivations
    let adapter: LoRAAdapter?
    /// Gradients of the base weights (nil: frozen).
    var baseGrads: FluxWeights? = nil
    /// Gradients of the adapter (nil: not trained).
    var loraGrads: LoRAAdapter? = nil
    /// Whether gradients must flow into the conditioning vector (adaLN inputs): needed for base
    /// gradients of the embedders and for input gradients, skipped otherwise.
    var conditioningGrads = false
    /// Packed copies of the weights (inference passes on CPUs with the packed kernel), else nil.
    var packed: FluxPackedWeights? = nil

    /// Sizes at this pass's batch.
    let dims: FluxDims

    init(ws: FluxActivations, adapter: LoRAAdapter?, batch: Int) {
        self.ws = ws
        self.adapter = adapter
        let d = ws.dims
        self.dims = FluxDims(b: batch, l: d.l, n: d.n, c: d.c, h: d.h, d: d.d, m: d.m)
    }

    func lora(_ l: FluxLinearWeights) -> Linear.LoRA? {
        guard let ad = adapter, let (a, b) = ad.pair(forLinear: l.id) else { return nil }
        return Linear.LoRA(a: a.data, b: b.data, rank: ad.rank, scale: ad.scale,
                           hidden: ws.loraHiddenBuffer(linear: l.id, rank: ad.rank))
    }

    /// y = l(x) over `rows` rows (with the adapter's branch when it has one for l).
    func linear(_ l: FluxLinearWeights, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, rows: Int) {
        if let packed {  // also for one row: OpenBLAS's sgemv would wake its own thread, which then spins
            packed.pieces(of: l.id)[0].forward(x: x, bias: l.bias?.data, y: y, rows: rows)
            if let lo = lora(l) {
                Linear.addLoRA(x: x, y: y, rows: rows, inFeatures: l.inFeatures, outFeatures: l.outFeatures, lora: lo)
            }
            return
        }
        Linear.forward(x: x, weight: l.weight.data, bias: l.bias?.data, y: y, rows: rows,
                       inFeatures: l.inFeatures, outFeatures: l.outFeatures, lora: lora(l))
    }

    /// Accumulates dx (if given; `overwrite` sets it instead), l's base gradients (if training the base)
    /// and its adapter gradients (if training the adapter).
    func linearBackward(_ l: FluxLinearWeights, dy: UnsafePointer<Float>, x: UnsafePointer<Float>,
                        dx: UnsafeMutablePointer<Float>?, rows: Int, overwrite: Bool = false) {
        var dx = dx
        let lo = lora(l)
        if overwrite, let d = dx {
            if lo == nil {  // dx = dy·W directly, no zeroing pass
                BLAS.sgemm(transA: false, transB: false, m: rows, n: l.inFeatures, k: l.outFeatures, alpha: 1, a: dy,
                           lda: l.outFeatures, b: l.weight.data, ldb: l.inFeatures, beta: 0, c: d, ldc: l.inFeatures)
                dx = nil
            } else {
                zero(d, rows * l.inFeatures)
            }
        }
        let g = baseGrads?.linears[l.id]
        var dA: UnsafeMutablePointer<Float>? = nil, dB: UnsafeMutablePointer<Float>? = nil
        if let lg = loraGrads, let (ga, gb) = lg.pair(forLinear: l.id) { dA = ga.data; dB = gb.data }
        Linear.backward(dy: dy, x: x, weight: l.weight.data, dx: dx, dWeight: g?.weight.data, dBias: g?.bias?.data,
                        rows: rows, inFeatures: l.inFeatures, outFeatures: l.outFeatures, lora: lo, dA: dA, dB: dB)
    }
}

/// Sets `count` floats at `p` to zero.
@inline(__always) func zero(_ p: UnsafeMutablePointer<Float>, _ count: Int) {
    p.update(repeating: 0, count: count)
}
