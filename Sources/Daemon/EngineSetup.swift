import Tensors

/// Process-wide settings of the numeric engine that the daemon's flags control.
enum EngineSetup {
    /// `--threads N`: the kernels' own thread count and OpenBLAS's.
    static func setThreads(_ n: Int) {
        Parallel.threads = n
        BLAS.setThreads(n)
    }
}
