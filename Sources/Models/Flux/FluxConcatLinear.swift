import Tensors

/// A linear layer over the channel-wise concatenation `[x1 | x2]` of two inputs, computed without
/// forming the concatenation: `y = x1·W1ᵀ + x2·W2ᵀ + b (+ s·([x1|x2]·Aᵀ)·Bᵀ)`, where W1, W2 (and A1,
/// A2) are the first k1 and last k2 columns of W `[out, k1 + k2]`. The single-stream block's `proj_out`
/// reads the attention output and the MLP activation this way.
enum FluxConcatLinear {
    static func forward(_ l: FluxLinearWeights, x1: UnsafePointer<Float>, k1: Int, x2: UnsafePointer<Float>, k2: Int,
                        y: UnsafeMutablePointer<Float>, rows m: Int, pass p: FluxPass) {
        let n = l.outFeatures, kk = k1 + k2, w = l.weight.data
        precondition(kk == l.inFeatures, "\(l.name): \(k1) + \(k2) inputs for \(l.inFeatures) features")
        if let pieces = p.packed?.pieces(of: l.id), pieces.count == 2, pieces[0].inFeatures == k1 {
            pieces[0].forward(x: x1, bias: l.bias?.data, y: y, rows: m)
            pieces[1].forward(x: x2, bias: nil, y: y, rows: m, accumulate: true)
            if let lo = p.lora(l) { addLoRA(lo, x1: x1, k1: k1, x2: x2, k2: k2, y: y, outFeatures: n, rows: m) }
            return
        }
        var beta: Float = 0
        if let bias = l.bias?.data {
            for r in 0..<m { (y + r * n).update(from: bias, count: n) }
            beta = 1
        }
        BLAS.sgemm(transA: false, transB: true, m: m, n: n, k: k1, alpha: 1, a: x1, lda: k1, b: w, ldb: kk,
                   beta: beta, c: y, ldc: n)
        BLAS.sgemm(transA: false, transB: true, m: m, n: n, k: k2, alpha: 1, a: x2, lda: k2, b: w + k1, ldb: kk,
                   beta: 1, c: y, ldc: n)
        if let lo = p.lora(l) { addLoRA(lo, x1: x1, k1: k1, x2: x2, k2: k2, y: y, outFeatures: n, rows: m) }
    }

    /// y += s·([x1|x2]·Aᵀ)·Bᵀ, the adapter branch.
    private static func addLoRA(_ lo: Linear.LoRA, x1: UnsafePointer<Float>, k1: Int, x2: UnsafePointer<Float>, k2: Int,
                                y: UnsafeMutablePointer<Float>, outFeatures n: Int, rows m: Int) {
        let r = lo.rank, kk = k1 + k2
        BLAS.sgemm(transA: false, transB: true, m: m, n: r, k: k1, alpha: 1, a: x1, lda: k1, b: lo.a, ldb: kk,
                   beta: 0, c: lo.hidden, ldc: r)
        BLAS.sgemm(transA: false, transB: true, m: m, n: r, k: k2, alpha: 1, a: x2, lda: k2, b: lo.a + k1, ldb: kk,
                   beta: 1, c: lo.hidden, ldc: r)
        BLAS.sgemm(transA: false, transB: true, m: m, n: n, k: r, alpha: lo.scale, a: lo.hidden, lda: r, b: lo.b,
                   ldb: r, beta: 1, c: y, ldc: n)
    }

    /// Accumulates (or, with `overwrite`, sets) dx1, dx2 (either may be nil); accumulates the base
    /// gradients when training the base and the adapter gradients when training the adapter.
    static func backward(_ l: FluxLinearWeights, dy: UnsafePointer<Float>, x1: UnsafePointer<Float>, k1: Int,
                         x2: UnsafePointer<Float>, k2: Int, dx1: UnsafeMutablePointer<Float>?,
                         dx2: UnsafeMutablePointer<Float>?, rows m: Int, overwrite: Bool = false, pass p: FluxPass) {
        let n = l.outFeatures, kk = k1 + k2, w = l.weight.data, beta: Float = overwrite ? 0 : 1
        if let dx1 {
            BLAS.sgemm(transA: false, transB: false, m: m, n: k1, k: n, alpha: 1, a: dy, lda: n, b: w, ldb: kk,
                       beta: beta, c: dx1, ldc: k1)
        }
        if let dx2 {
            BLAS.sgemm(transA: false, transB: false, m: m, n: k2, k: n, alpha: 1, a: dy, lda: n, b: w + k1, ldb: kk,
                       beta: beta, c: dx2, ldc: k2)
        }
        if let g = p.baseGrads?.linears[l.id] {
            let dw = g.weight.data
            BLAS.sgemm(transA: true, transB: false, m: n, n: k1, k: m, alpha: 1, a: dy, lda: n, b: x1, ldb: k1,
                       beta: 1, c: dw, ldc: kk)
            BLAS.sgemm(transA: true, transB: false, m: n, n: k2, k: m, alpha: 1, a: dy, lda: n, b: x2, ldb: k2,
                       beta: 1, c: dw + k1, ldc: kk)
            if let db = g.bias?.data {
                BLAS.sgemm(transA: false, transB: false, m: 1, n: n, k: m, alpha: 1, a: p.ws.ones(m), lda: m, b: dy,
                           ldb: n, beta: 1, c: db, ldc: n)
            }
        }
        guard let lo = p.lora(l) else { return }
        let r = lo.rank
        if let (ga, gb) = p.loraGrads?.pair(forLinear: l.id) {
            BLAS.sgemm(transA: true, transB: false, m: n, n: r, k: m, alpha: lo.scale, a: dy, lda: n, b: lo.hidden,
                       ldb: r, beta: 1, c: gb.data, ldc: r)
            // hidden ← s·dy·B, the gradient of x·Aᵀ.
            BLAS.sgemm(transA: false, transB: false, m: m, n: r, k: n, alpha: lo.scale, a: dy, lda: n, b: lo.b, ldb: r,
                       beta: 0, c: lo.hidden, ldc: r)
            BLAS.sgemm(transA: true, transB: false, m: r, n: k1, k: m, alpha: 1, a: lo.hidden, lda: r, b: x1, ldb: k1,
                       beta: 1, c: ga.data, ldc: kk)
            BLAS.sgemm(transA: true, transB: false, m: r, n: k2, k: m, alpha: 1, a: lo.hidden, lda: r, b: x2, ldb: k2,
                       beta: 1, c: ga.data + k1, ldc: kk)
        } else if dx1 != nil || dx2 != nil {
            BLAS.sgemm(transA: false, transB: false, m: m, n: r, k: n, alpha: lo.scale, a: dy, lda: n, b: lo.b, ldb: r,
                       beta: 0, c: lo.hidden, ldc: r)
        } else {
            return
        }
        if let dx1 {
            BLAS.sgemm(transA: false, transB: false, m: m, n: k1, k: r, alpha: 1, a: lo.hidden, lda: r, b: lo.a, ldb: kk,
                       beta: 1, c: dx1, ldc: k1)
        }
        if let dx2 {
            BLAS.sgemm(transA: false, transB: false, m: m, n: k2, k: r, alpha: 1, a: lo.hidden, lda: r, b: lo.a + k1,
                       ldb: kk, beta: 1, c: dx2, ldc: k2)
        }
    }
}
