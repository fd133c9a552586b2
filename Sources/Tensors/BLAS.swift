import CBLAS
import Foundation

/// The OpenBLAS thread pool, its kernel selection, and the GEMM entry point the kernels share.
public enum BLAS {
    /// Sets the number of threads OpenBLAS uses for one call (1 = single-threaded).
    public static func setThreads(_ n: Int) {
        _ = coreChoice
        openblas_set_num_threads(Int32(max(1, n)))
    }

    /// The number of threads OpenBLAS uses for one call.
    public static var threads: Int {
        _ = coreChoice
        return Int(openblas_get_num_threads())
    }

    /// The name of the CPU kernel family OpenBLAS uses (e.g. "SkylakeX", "Haswell").
    public static var coreName: String {
        _ = coreChoice
        return String(cString: openblas_get_corename())
    }

    /// What `coreChoice` did, for logs and benchmarks: nil if OpenBLAS's own choice was kept.
    public static var coreOverride: String? { coreChoice }

    /// OpenBLAS built with DYNAMIC_ARCH (Debian's) picks its kernels from the CPU model at load time. A
    /// model newer than the library (0.3.21 does not know Emerald Rapids, family 6 model 207, for
    /// instance) falls back to the generic "Prescott" SSE3 kernels, several times slower than the AVX-512
    /// ones on the same machine. When that happens, and OPENBLAS_CORETYPE is not set by the user, the
    /// selection is redone once, before the first GEMM, for the family the CPU flags support.
    private static let coreChoice: String? = {
        #if os(Linux)
        guard getenv("OPENBLAS_CORETYPE") == nil else { return nil }
        let current = String(cString: openblas_get_corename()).lowercased()
        guard current == "prescott" || current == "core2" || current == "nehalem" || current == "unknown" else {
            return nil
        }
        guard let flags = cpuFlags() else { return nil }
        let want: String
        if ["avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd"].allSatisfy(flags.contains) {
            want = "SkylakeX"
        } else if ["avx2", "fma"].allSatisfy(flags.contains) {
            want = "Haswell"
        } else {
            return nil
        }
        typealias VoidFn = @convention(c) () -> Void
        // dlsym(RTLD_DEFAULT = NULL): absent (nil) in OpenBLAS builds without DYNAMIC_ARCH.
        guard let initSym = dlsym(nil, "gotoblas_dynamic_init"), let quitSym = dlsym(nil, "gotoblas_dynamic_quit")
        else { return nil }
        setenv("OPENBLAS_CORETYPE", want, 1)
        unsafeBitCast(quitSym, to: VoidFn.self)()
        unsafeBitCast(initSym, to: VoidFn.self)()
        unsetenv("OPENBLAS_CORETYPE")
        return "\(current) → \(String(cString: openblas_get_corename()))"
        #else
        return nil
        #endif
    }()

    private static func cpuFlags() -> Set<String>? {
        #if os(Linux)
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("flags") }),
              let colon = line.firstIndex(of: ":") else { return nil }
        return Set(line[line.index(after: colon)...].split(separator: " ").map(String.init))
        #else
        return nil
        #endif
    }

    /// Runs `body` with OpenBLAS limited to `n` threads, then restores the previous count. Kernels use it
    /// around many small GEMMs issued from several threads at once (attention heads), where OpenBLAS's
    /// own threading would make the callers contend for its pool. The setting is process-wide: the
    /// kernels assume one kernel runs at a time.
    @inline(__always)
    public static func withThreads<R>(_ n: Int, _ body: () throws -> R) rethrows -> R {
        _ = coreChoice
        let previous = openblas_get_num_threads()
        if previous == Int32(n) { return try body() }
        openblas_set_num_threads(Int32(n))
        defer { openblas_set_num_threads(previous) }
        return try body()
    }

    /// Row-major C[m, n] = alpha·op(A)·op(B) + beta·C, where op(A) is [m, k] and op(B) is [k, n];
    /// `transA`/`transB` say the stored matrix is the transpose of op(·). Leading dimensions are the
    /// row strides of the matrices as stored.
    @inline(__always)
    public static func sgemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
                             a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                             beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        _ = coreChoice
        if m == 0 || n == 0 { return }
        if m == 1 && !transA && k > 0 {
            // One row (a batch-1 timestep or adaLN projection): a matrix-vector product reads B once as
            // stored, where GEMM would first repack all of it. beta = 0 must not read C (it may hold NaN).
            if beta == 0 { c.update(repeating: 0, count: n) }
            if transB {
                cblas_sgemv(CblasRowMajor, CblasNoTrans, Int32(n), Int32(k), alpha, b, Int32(ldb), a, 1, beta, c, 1)
            } else {
                cblas_sgemv(CblasRowMajor, CblasTrans, Int32(k), Int32(n), alpha, b, Int32(ldb), a, 1, beta, c, 1)
            }
            return
        }
        cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }
}
