import Foundation

/// A thread beside the loop for work that would hold the loop up (parsing a message of megabytes,
/// trimming the heap) and must not wait for the worker's units. Work runs in order; each result is
/// collected by the loop thread after `wake` (thread-safe, e.g. uv_async_send) with `takeResults`.
final class HelperThread: @unchecked Sendable {
    private let cond = NSCondition()
    private var work: [(id: Int, body: () -> Any)] = []
    private var results: [(Int, Any)] = []
    private var stopping = false
    private var exited = false
    private let wake: () -> Void

    init(wake: @escaping () -> Void) {
        self.wake = wake
        let t = Thread { [self] in self.run() }
        t.name = "rpc-helper"
        t.stackSize = 16 << 20
        t.start()
    }

    func submit(id: Int, _ body: @escaping () -> Any) {
        cond.lock()
        work.append((id, body))
        cond.signal()
        cond.unlock()
    }

    func takeResults() -> [(Int, Any)] {
        cond.lock()
        defer { cond.unlock() }
        let out = results
        results = []
        return out
    }

    /// Finishes the work already submitted, then ends the thread (waits for it).
    func stop() {
        cond.lock()
        stopping = true
        cond.broadcast()
        while !exited { cond.wait() }
        cond.unlock()
    }

    private func run() {
        cond.lock()
        while true {
            if work.isEmpty {
                if stopping { break }
                cond.wait()
                continue
            }
            let w = work.removeFirst()
            cond.unlock()
            let r = w.body()
            cond.lock()
            results.append((w.id, r))
            wake()
        }
        exited = true
        cond.broadcast()
        cond.unlock()
    }
}
