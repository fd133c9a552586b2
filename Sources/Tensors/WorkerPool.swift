import CKernels

/// Fork-join over the kernels' worker threads (`erudiff_pool_run` in CKernels): the caller and up to
/// `threads - 1` workers share `count` tasks. Workers spin briefly between regions, so the many short
/// regions of one forward pass pay no thread wake-up each (as they would with libdispatch's
/// `concurrentPerform`; docs/speed.md). A region started while the pool is
/// busy — nested in another region, or from a second thread — runs inline on its caller.
public enum WorkerPool {
    /// Calls `body(i)` for every i in `0..<count`, possibly concurrently; returns when all are done.
    public static func run(_ count: Int, threads: Int, _ body: (Int) -> Void) {
        if count <= 0 { return }
        if count == 1 || threads <= 1 {
            for i in 0..<count { body(i) }
            return
        }
        withoutActuallyEscaping(body) { escaping in
            var task = escaping
            withUnsafeMutablePointer(to: &task) { p in
                erudiff_pool_run(count, workerPoolTask, UnsafeMutableRawPointer(p), Int32(threads))
            }
        }
    }

    /// How long an idle worker spins before it sleeps, in nanoseconds (default 100 µs).
    public static func setSpin(nanoseconds: Int) { erudiff_pool_set_spin(nanoseconds) }
}

/// The C entry point of a task: the context is the caller's `(Int) -> Void`.
private func workerPoolTask(_ context: UnsafeMutableRawPointer?, _ index: Int) {
    context!.assumingMemoryBound(to: ((Int) -> Void).self).pointee(index)
}
