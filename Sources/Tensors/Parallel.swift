import Foundation

/// Splits row or element work across threads for the kernels.
///
/// Work smaller than twice `minChunk` runs inline on the caller's thread (threads cost more than they
/// save there); larger work is cut into at most `threads` contiguous ranges run on the `WorkerPool`.
/// Results never depend on the thread count unless a kernel's doc
/// comment says so, because each range writes disjoint outputs.
public enum Parallel {
    /// Maximum number of ranges work is split into (default: the active processor count).
    /// Set it before a run; changing it while kernels execute is not supported.
    public static var threads: Int = max(1, ProcessInfo.processInfo.activeProcessorCount)

    /// Calls `body` on disjoint ranges that together cover `0..<count`, each at least `minChunk` long
    /// (except when `count` itself is smaller), possibly concurrently.
    @inline(__always)
    public static func forEachChunk(_ count: Int, minChunk: Int, _ body: (Range<Int>) -> Void) {
        if count <= 0 { return }
        let chunks = min(threads, count / max(minChunk, 1))
        if chunks <= 1 { body(0..<count); return }
        WorkerPool.run(chunks, threads: chunks) { i in
            body((count * i / chunks)..<(count * (i + 1) / chunks))
        }
    }
}
