import CKernels

/// Which instruction set the hand-written kernels (CKernels: the packed GEMM, the GELUs, softmax rows)
/// use. Each has an AVX-512 and an AVX2 + FMA version; a CPU with neither gets BLAS and the portable
/// Swift loops. The level is the CPU's best unless lowered — by `ERUDIFF_KERNELS=avx2|portable` for a
/// side-by-side benchmark, or by `withLevel` so that tests check every version the machine can run.
public enum CPUKernels {
    public enum Level: Int32, CaseIterable, Comparable, Sendable, CustomStringConvertible {
        case portable = 0, avx2 = 1, avx512 = 2

        public static func < (a: Level, b: Level) -> Bool { a.rawValue < b.rawValue }
        public var description: String { ["portable", "AVX2", "AVX-512"][Int(rawValue)] }
    }

    /// The best level this CPU runs.
    public static var hardware: Level { Level(rawValue: erudiff_kernel_hardware_level()) ?? .portable }

    /// The level in use now.
    public static var current: Level { Level(rawValue: erudiff_kernel_level()) ?? .portable }

    /// Every level this CPU runs, lowest first.
    public static var available: [Level] { Level.allCases.filter { $0 <= hardware } }

    /// Runs `body` with the kernels capped at `level`, then restores the previous cap. Meant for tests
    /// and benchmarks: the cap is process-wide, so nothing else may run kernels meanwhile.
    public static func withLevel<T>(_ level: Level, _ body: () throws -> T) rethrows -> T {
        let before = current
        _ = erudiff_kernel_level_limit(level.rawValue)
        defer { _ = erudiff_kernel_level_limit(before.rawValue) }
        return try body()
    }
}
