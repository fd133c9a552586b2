import CKernels
import Foundation

/// A frozen linear weight `W [out, in]` rearranged once for the few-row products of inference.
///
/// OpenBLAS repacks its operand on every GEMM call; for a handful of rows (a batch-1 text encoding
/// has about ten tokens) that repacking costs more than the arithmetic. A `PackedWeight` does it once,
/// at load time, into strips of 32 output columns (CKernels), and `forward` is then a plain
/// register-blocked loop over them (AVX-512, or AVX2 + FMA), split across threads. On CPUs with neither,
/// or with the kernels capped to portable code (`CPUKernels`), it calls BLAS on the weight as given, so
/// results differ only by float rounding between the paths.
public final class PackedWeight: @unchecked Sendable {
    /// Output and input features.
    public let outFeatures: Int, inFeatures: Int
    /// Whether this CPU runs the packed kernel (otherwise `forward` uses BLAS on the original weight).
    /// ERUDIFF_PACKED=0 forces the BLAS path (for side-by-side benchmarks).
    public static let isAvailable = CPUKernels.hardware >= .avx2
        && getenv("ERUDIFF_PACKED").map { String(cString: $0) } != "0"

    /// The weight as given (kept alive for the BLAS fallback), its first used column and row stride.
    private let original: Tensor
    private let weight: UnsafePointer<Float>
    private let ldw: Int
    private let packed: UnsafeMutablePointer<Float>?
    private let strips: Int

    /// Packs `weight` (`[out, in]`, row-major), or only its input columns `columns` (a linear layer over
    /// a concatenation `[x1 | x2]` packs one piece per input). The tensor is kept for the BLAS fallback.
    public init(_ weight: Tensor, columns: Range<Int>? = nil) {
        precondition(weight.shape.count == 2, "a linear weight is [out, in], got \(weight.shape)")
        let cols = columns ?? 0..<weight.shape[1]
        precondition(cols.lowerBound >= 0 && cols.upperBound <= weight.shape[1] && !cols.isEmpty,
                     "columns \(cols) outside \(weight.shape) or empty")
        outFeatures = weight.shape[0]
        inFeatures = cols.count
        original = weight
        ldw = weight.shape[1]
        self.weight = UnsafePointer(weight.data + cols.lowerBound)
        strips = (outFeatures + Int(ERUDIFF_STRIP) - 1) / Int(ERUDIFF_STRIP)
        if Self.isAvailable {
            let count = erudiff_packed_count(Int32(outFeatures), Int32(inFeatures))
            let p = UnsafeMutablePointer<Float>.allocate(capacity: count)
            erudiff_pack_weight(Int32(outFeatures), Int32(inFeatures), self.weight, Int32(ldw), p)
            packed = p
        } else {
            packed = nil
        }
    }

    deinit { packed?.deallocate() }

    /// Products with at least this many rows are split across threads (ERUDIFF_PACKED_THREADED_ROWS
    /// overrides it, for benchmarks).
    static let threadedRows: Int = getenv("ERUDIFF_PACKED_THREADED_ROWS").flatMap { Int(String(cString: $0)) } ?? 64

    /// y = x·Wᵀ + b for `rows` rows: x `[rows, in]`, y `[rows, out]` (must not overlap x). With
    /// `accumulate`, y += x·Wᵀ (+ b) instead.
    public func forward(x: UnsafePointer<Float>, bias: UnsafePointer<Float>?, y: UnsafeMutablePointer<Float>, rows: Int,
                        accumulate: Bool = false) {
        guard rows > 0 else { return }
        let n = outFeatures, k = inFeatures
        var beta: Float = accumulate ? 1 : 0
        if let bias {
            if accumulate {
                for r in 0..<rows { Residual.forward(a: y + r * n, b: bias, y: y + r * n, count: n) }
            } else {
                for r in 0..<rows { (y + r * n).update(from: bias, count: n) }
            }
            beta = 1
        }
        guard let packed, CPUKernels.current >= .avx2 else {
            BLAS.sgemm(transA: false, transB: true, m: rows, n: n, k: k, alpha: 1, a: x, lda: k, b: weight, ldb: ldw,
                       beta: beta, c: y, ldc: n)
            return
        }
        // Threads only pay for themselves on many rows: waking a second thread for each of the few dozen
        // products of a batch-1 encoding costs more than it saves.
        let threads = rows >= Self.threadedRows ? min(BLAS.threads, Parallel.threads, strips) : 1
        if threads <= 1 {
            _ = erudiff_sgemm_packed(Int32(rows), Int32(n), Int32(k), x, Int32(k), packed, 0, Int32(strips), beta, y,
                                     Int32(n))
            return
        }
        let s = strips
        WorkerPool.run(threads, threads: threads) { t in
            _ = erudiff_sgemm_packed(Int32(rows), Int32(n), Int32(k), x, Int32(k), packed, Int32(s * t / threads),
                                     Int32(s * (t + 1) / threads), beta, y, Int32(n))
        }
    }
}
