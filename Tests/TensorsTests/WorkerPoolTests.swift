import Foundation
import XCTest
import Tensors

/// The kernels' fork-join pool: every task runs exactly once and has finished when `run` returns,
/// whether the workers are awake, asleep, asked for again from inside a task, or shared by several
/// threads at once (the daemon's jobs).
final class WorkerPoolTests: XCTestCase {
    /// Counts of how often each index ran, written only by the task that owns the index.
    private final class Hits: @unchecked Sendable {
        let counts: UnsafeMutablePointer<Int>
        let n: Int
        init(_ n: Int) { self.n = n; counts = .allocate(capacity: n); counts.initialize(repeating: 0, count: n) }
        deinit { counts.deallocate() }
        var all: [Int] { Array(UnsafeBufferPointer(start: counts, count: n)) }
    }

    func testEveryTaskRunsOnceAndHasFinishedOnReturn() {
        for threads in [1, 2, 3, 8] {
            for count in [1, 2, 3, 7, 64, 1000] {
                let hits = Hits(count)
                WorkerPool.run(count, threads: threads) { i in
                    // Some work, so that tasks overlap across threads.
                    var x = 0.0
                    for k in 0..<200 { x += sin(Double(i * k)) }
                    if x.isNaN { return }
                    hits.counts[i] += 1
                }
                XCTAssertEqual(hits.all, [Int](repeating: 1, count: count), "threads \(threads), count \(count)")
            }
        }
    }

    func testWorkersThatWentToSleepWakeForTheNextRegion() {
        WorkerPool.setSpin(nanoseconds: 0)
        defer { WorkerPool.setSpin(nanoseconds: 100_000) }
        for round in 0..<50 {
            let hits = Hits(16)
            if round % 10 == 0 { usleep(2_000) }  // let the workers reach their sleep
            WorkerPool.run(16, threads: 2) { i in hits.counts[i] += 1 }
            XCTAssertEqual(hits.all, [Int](repeating: 1, count: 16), "round \(round)")
        }
    }

    func testNestedRegionsRunInlineAndComplete() {
        let outer = 4, inner = 25
        let hits = Hits(outer * inner)
        WorkerPool.run(outer, threads: 2) { i in
            WorkerPool.run(inner, threads: 2) { j in hits.counts[i * inner + j] += 1 }
        }
        XCTAssertEqual(hits.all, [Int](repeating: 1, count: outer * inner))
    }

    func testConcurrentCallersEachGetAllTheirTasks() {
        let callers = 6, count = 257, rounds = 40
        let results = Hits(callers)
        DispatchQueue.concurrentPerform(iterations: callers) { c in
            var ok = 0
            for _ in 0..<rounds {
                let hits = Hits(count)
                WorkerPool.run(count, threads: 2) { i in hits.counts[i] += 1 }
                if hits.all == [Int](repeating: 1, count: count) { ok += 1 }
            }
            results.counts[c] = ok
        }
        XCTAssertEqual(results.all, [Int](repeating: rounds, count: callers))
    }

    func testParallelChunksCoverTheRangeWhateverTheThreadCount() {
        defer { Parallel.threads = ProcessInfo.processInfo.activeProcessorCount }
        for threads in [1, 2, 5] {
            Parallel.threads = threads
            let hits = Hits(10_001)
            Parallel.forEachChunk(10_001, minChunk: 100) { range in
                for i in range { hits.counts[i] += 1 }
            }
            XCTAssertEqual(hits.all, [Int](repeating: 1, count: 10_001), "threads \(threads)")
        }
    }
}
