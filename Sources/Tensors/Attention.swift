/// Multi-head scaled-dot-product self-attention, `softmax(q·kᵀ/√Dh + mask)·v` per batch and head.
///
/// Layout: q, k, v `[B, T, H, Dh]` — exactly a Linear output `[B·T, H·Dh]` — and out `[B, T, H·Dh]`
/// (ready for the output projection). Optional additive key mask `[B, T]`: 0 keeps a key, a large
/// negative value (−1e9, or −∞) drops it for every query of that batch element (BERT's padding mask).
/// Saved probabilities `[B, H, T, T]` (row = query, column = key).
///
/// Each (batch, head) pair is a few `cblas_sgemm` calls on strided views (leading dimension H·Dh, no
/// copies). Pairs run in parallel over `Parallel.threads` with OpenBLAS held to one thread meanwhile
/// (`BLAS.withThreads`), since these GEMMs are too small to split further.
public enum Attention {
    /// Computes `out` and saves the attention probabilities in `probs` (`[B, H, T, T]`, needed by
    /// backward; required, since the scores are formed there).
    public static func forward(q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                               mask: UnsafePointer<Float>?, out: UnsafeMutablePointer<Float>,
                               probs: UnsafeMutablePointer<Float>,
                               batch: Int, tokens: Int, heads: Int, headDim: Int) {
        let t = tokens, ld = heads * headDim, tt = t * t
        let scale = 1 / Float(headDim).squareRoot()
        forEachHead(batch: batch, heads: heads, tokens: t, headDim: headDim) { b, h, _ in
            let off = b * t * ld + h * headDim
            let p = probs + (b * heads + h) * tt
            BLAS.sgemm(transA: false, transB: true, m: t, n: t, k: headDim, alpha: scale, a: q + off, lda: ld,
                       b: k + off, ldb: ld, beta: 0, c: p, ldc: t)
            for i in 0..<t {
                let row = p + i * t
                if let mask { addInPlace(row, mask + b * t, t) }
                Softmax.row(row, row, t)
            }
            BLAS.sgemm(transA: false, transB: false, m: t, n: headDim, k: t, alpha: 1, a: p, lda: t,
                       b: v + off, ldb: ld, beta: 0, c: out + off, ldc: ld)
        }
    }

    /// Accumulates dq, dk, dv (each may be nil) from dout `[B, T, H·Dh]`. `probs` is forward's;
    /// `scratch` is `[B, H, T, T]` of working memory (contents on return unspecified).
    public static func backward(dout: UnsafePointer<Float>, q: UnsafePointer<Float>, k: UnsafePointer<Float>,
                                v: UnsafePointer<Float>, probs: UnsafePointer<Float>,
                                dq: UnsafeMutablePointer<Float>?, dk: UnsafeMutablePointer<Float>?,
                                dv: UnsafeMutablePointer<Float>?, scratch: UnsafeMutablePointer<Float>,
                                batch: Int, tokens: Int, heads: Int, headDim: Int) {
        let t = tokens, ld = heads * headDim, tt = t * t
        let scale = 1 / Float(headDim).squareRoot()
        forEachHead(batch: batch, heads: heads, tokens: t, headDim: headDim) { b, h, slot in
            let off = b * t * ld + h * headDim
            let p = probs + (b * heads + h) * tt
            let ds = scratch + slot * tt  // one cache-warm T×T tile per thread, reused head after head
            if let dv {  // dV += Pᵀ·dO
                BLAS.sgemm(transA: true, transB: false, m: t, n: headDim, k: t, alpha: 1, a: p, lda: t,
                           b: dout + off, ldb: ld, beta: 1, c: dv + off, ldc: ld)
            }
            guard dq != nil || dk != nil else { return }
            // dP = dO·Vᵀ, then dS = scale·P ⊙ (dP − rowsum(dP ⊙ P)) in place.
            BLAS.sgemm(transA: false, transB: true, m: t, n: t, k: headDim, alpha: 1, a: dout + off, lda: ld,
                       b: v + off, ldb: ld, beta: 0, c: ds, ldc: t)
            for i in 0..<t {
                Softmax.rowBackward(ds + i * t, p + i * t, ds + i * t, t, scale: scale, accumulate: false)
            }
            if let dq {  // dQ += dS·K
                BLAS.sgemm(transA: false, transB: false, m: t, n: headDim, k: t, alpha: 1, a: ds, lda: t,
                           b: k + off, ldb: ld, beta: 1, c: dq + off, ldc: ld)
            }
            if let dk {  // dK += dSᵀ·Q
                BLAS.sgemm(transA: true, transB: false, m: t, n: headDim, k: t, alpha: 1, a: ds, lda: t,
                           b: q + off, ldb: ld, beta: 1, c: dk + off, ldc: ld)
            }
        }
    }

    /// Runs `body(b, h, slot)` for every batch element and head, spread over threads when there is
    /// enough work; each (b, h) touches disjoint output columns, so the result does not depend on the
    /// split. `slot` (< B·H) is private to the thread running the call: a scratch index it may reuse.
    @inline(__always)
    static func forEachHead(batch: Int, heads: Int, tokens: Int, headDim: Int, _ body: (Int, Int, Int) -> Void) {
        let work = tokens * tokens * headDim
        let items = batch * heads, minChunk = max(1, 262_144 / max(work, 1))
        if Parallel.threads > 1 && items >= 2 * minChunk {
            // Heads in parallel, each GEMM single-threaded inside.
            BLAS.withThreads(1) {
                Parallel.forEachChunk(items, minChunk: minChunk) { range in
                    for i in range { body(i / heads, i % heads, range.lowerBound) }
                }
            }
        } else {
            for i in 0..<items { body(i / heads, i % heads, 0) }
        }
    }
}
