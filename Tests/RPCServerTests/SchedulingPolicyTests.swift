import Foundation
import XCTest
@testable import RPCServer

/// The scheduling policy (protocol/README.md): jobs are short until they have used `longAfter` of
/// worker time; while both kinds wait, long jobs keep `longShare` of the worker; within a kind the
/// least served runs next. Issue 35: a flood of short jobs must not starve a long one.
final class SchedulingPolicyTests: XCTestCase {
    /// The scheduling policy: once past `longAfter` of worker time a job is long, and long jobs keep
    /// `longShare` of the worker while short ones queue (here 60 ms units against 5 ms ones).
    func testALongJobKeepsItsShareAgainstAFloodOfShortJobs() {
        let h = DispatcherHarness(longShare: 0.5, longAfter: 0.1)
        let p = RecordingPeer(1)
        h.send(h.request(1, "test/sleep", #"{"units": 100000, "unitMs": 30}"#), from: p)
        usleep(200_000)
        var next = 100
        func topUp() {       // eight short jobs in the queue at all times
            let waiting = h.dispatcher.scheduler.snapshot().jobs.count - 1
            for _ in waiting..<8 {
                h.send(h.request(next, "test/sleep", #"{"units": 3, "unitMs": 5}"#), from: p)
                next += 1
            }
        }
        func longUnits() -> Int { Int(h.dispatcher.scheduler.snapshot().jobs.first { $0["id"] == 1 }?["units"]?.intValue ?? 0) }
        topUp()
        let u0 = longUnits(), t0 = Date()
        while Date().timeIntervalSince(t0) < 1.5 {
            h.dispatcher.pumpSchedulerEvents()
            topUp()
            usleep(2000)
        }
        let share = Double(longUnits() - u0) * 0.03 / Date().timeIntervalSince(t0)
        XCTAssertGreaterThan(share, 0.38, "the long job got \(share) of the worker")
        XCTAssertLessThan(share, 0.65, "the short jobs keep the rest")
        XCTAssertGreaterThan(p.replies.count, 20, "short jobs finish meanwhile")
        h.send("{\"jsonrpc\":\"2.0\",\"method\":\"$/cancelRequest\",\"params\":{\"id\":1}}", from: p)
        XCTAssertTrue(h.pump { p.reply(id: 1) != nil })
    }

    /// Before it is long, a job shares the worker evenly with short ones (least served first).
    func testJobsBelowTheThresholdShareEvenly() {
        let h = DispatcherHarness(longAfter: 100)
        let p = RecordingPeer(1)
        h.send(h.request(1, "test/sleep", #"{"units": 100000, "unitMs": 30}"#), from: p)
        usleep(100_000)
        for i in 0..<4 { h.send(h.request(10 + i, "test/sleep", #"{"units": 1000, "unitMs": 30}"#), from: p) }
        usleep(1_500_000)
        h.dispatcher.pumpSchedulerEvents()
        let units = h.dispatcher.scheduler.snapshot().jobs.map { Int($0["units"]?.intValue ?? 0) }
        let laterOnes = units.dropFirst()
        XCTAssertLessThan(laterOnes.max()! - laterOnes.min()!, 3, "\(units)")
        for id in [1, 10, 11, 12, 13] {
            h.send("{\"jsonrpc\":\"2.0\",\"method\":\"$/cancelRequest\",\"params\":{\"id\":\(id)}}", from: p)
        }
        XCTAssertTrue(h.pump { p.replies.count == 5 })
    }
}
