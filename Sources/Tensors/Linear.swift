/// A fully connected layer with optional bias and optional LoRA branch:
/// `y = x·Wᵀ + b + s·(x·Aᵀ)·Bᵀ`.
///
/// Shapes (row-major, PyTorch layout so diffusers/transformers/PEFT weights load as stored):
/// x `[rows, in]`, W `[out, in]`, b `[out]`, y `[rows, out]`; LoRA A `[rank, in]`, B `[out, rank]`,
/// scale s = alpha / rank (PEFT convention).
public enum Linear {
    /// The low-rank adapter of one linear layer, plus the buffer that links its forward and backward.
    public struct LoRA {
        /// A: `[rank, in]` (PEFT `lora_A.weight`).
        public var a: UnsafePointer<Float>
        /// B: `[out, rank]` (PEFT `lora_B.weight`).
        public var b: UnsafePointer<Float>
        public var rank: Int
        /// s, usually alpha / rank.
        public var scale: Float
        /// `[rows, rank]`: forward writes x·Aᵀ here; backward reads it, and then overwrites it with its
        /// own gradient when dA or dx is requested (so one forward is followed by at most one backward).
        public var hidden: UnsafeMutablePointer<Float>

        public init(a: UnsafePointer<Float>, b: UnsafePointer<Float>, rank: Int, scale: Float,
                    hidden: UnsafeMutablePointer<Float>) {
            self.a = a; self.b = b; self.rank = rank; self.scale = scale; self.hidden = hidden
        }
    }

    /// y = x·Wᵀ + b (+ s·(x·Aᵀ)·Bᵀ when `lora` is given). `y` must not overlap `x`.
    public static func forward(x: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                               bias: UnsafePointer<Float>?, y: UnsafeMutablePointer<Float>,
                               rows: Int, inFeatures: Int, outFeatures: Int, lora: LoRA? = nil) {
        let m = rows, k = inFeatures, n = outFeatures
        var beta: Float = 0
        if let bias {
            Parallel.forEachChunk(m, minChunk: max(1, 16384 / max(n, 1))) { range in
                for r in range { (y + r * n).update(from: bias, count: n) }
            }
            beta = 1
        }
        BLAS.sgemm(transA: false, transB: true, m: m, n: n, k: k, alpha: 1, a: x, lda: k, b: weight, ldb: k,
                   beta: beta, c: y, ldc: n)
        if let lora { addLoRA(x: x, y: y, rows: m, inFeatures: k, outFeatures: n, lora: lora) }
    }

    /// y += s·(x·Aᵀ)·Bᵀ: the adapter branch of `forward` alone (for callers computing x·Wᵀ another way).
    public static func addLoRA(x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, rows m: Int, inFeatures k: Int,
                               outFeatures n: Int, lora l: LoRA) {
        guard l.rank > 0 else { return }
        BLAS.sgemm(transA: false, transB: true, m: m, n: l.rank, k: k, alpha: 1, a: x, lda: k,
                   b: l.a, ldb: k, beta: 0, c: l.hidden, ldc: l.rank)
        BLAS.sgemm(transA: false, transB: true, m: m, n: n, k: l.rank, alpha: l.scale, a: l.hidden,
                   lda: l.rank, b: l.b, ldb: l.rank, beta: 1, c: y, ldc: n)
    }

    /// Accumulates the gradients of `forward`: dx += dy·W (+ LoRA path), dW += dyᵀ·x, db += Σ_rows dy,
    /// dB += s·dyᵀ·(x·Aᵀ), dA += (s·dy·B)ᵀ·x. Each gradient pointer may be nil to skip it (frozen base:
    /// pass dWeight nil). `lora` must be the one given to the matching forward (its `hidden` is read,
    /// then overwritten when dA or dx is requested).
    public static func backward(dy: UnsafePointer<Float>, x: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                dx: UnsafeMutablePointer<Float>?, dWeight: UnsafeMutablePointer<Float>?,
                                dBias: UnsafeMutablePointer<Float>?,
                                rows: Int, inFeatures: Int, outFeatures: Int,
                                lora: LoRA? = nil, dA: UnsafeMutablePointer<Float>? = nil,
                                dB: UnsafeMutablePointer<Float>? = nil) {
        let m = rows, k = inFeatures, n = outFeatures
        if let dx {
            BLAS.sgemm(transA: false, transB: false, m: m, n: k, k: n, alpha: 1, a: dy, lda: n, b: weight, ldb: k,
                       beta: 1, c: dx, ldc: k)
        }
        if let dWeight {
            BLAS.sgemm(transA: true, transB: false, m: n, n: k, k: m, alpha: 1, a: dy, lda: n, b: x, ldb: k,
                       beta: 1, c: dWeight, ldc: k)
        }
        if let dBias { columnSums(dy, rows: m, cols: n, into: dBias) }
        if let l = lora, l.rank > 0 {
            let r = l.rank
            if let dB {
                BLAS.sgemm(transA: true, transB: false, m: n, n: r, k: m, alpha: l.scale, a: dy, lda: n,
                           b: l.hidden, ldb: r, beta: 1, c: dB, ldc: r)
            }
            if dA != nil || dx != nil {
                let g = l.hidden  // now s·dy·B, [rows, rank]
                BLAS.sgemm(transA: false, transB: false, m: m, n: r, k: n, alpha: l.scale, a: dy, lda: n,
                           b: l.b, ldb: r, beta: 0, c: g, ldc: r)
                if let dA {
                    BLAS.sgemm(transA: true, transB: false, m: r, n: k, k: m, alpha: 1, a: g, lda: r, b: x,
                               ldb: k, beta: 1, c: dA, ldc: k)
                }
                if let dx {
                    BLAS.sgemm(transA: false, transB: false, m: m, n: k, k: r, alpha: 1, a: g, lda: r, b: l.a,
                               ldb: k, beta: 1, c: dx, ldc: k)
                }
            }
        }
    }

    /// out[c] += Σ_r a[r, c].
    static func columnSums(_ a: UnsafePointer<Float>, rows: Int, cols: Int, into out: UnsafeMutablePointer<Float>) {
        reduceColumns(rows: rows, cols: cols, into: out, { r, c in load8(a + r * cols + c) }, { r, c in a[r * cols + c] })
    }
}
