import Foundation
import XCTest
@testable import RPCServer

/// JSON-RPC dispatch without sockets, for a toy application: validation, standard errors, batches,
/// notifications, jobs with progress and cancellation, interleaving, limits, lifecycle, checkpoints, hooks.
final class DispatcherTests: XCTestCase {
    func testStatusAnswersImmediately() throws {
        let h = DispatcherHarness()
        let p = RecordingPeer(1)
        h.send(h.request(1, "status"), from: p)
        let r = try XCTUnwrap(p.reply(id: 1))
        XCTAssertEqual(r["jsonrpc"], "2.0")
        XCTAssertEqual(r["result"]?["jobs"], .array([]))
        XCTAssertEqual(r["result"]?["queue"], 0)
        XCTAssertNotNil(r["result"]?["uptimeMs"]?.intValue)
        XCTAssertEqual(r["result"]?["version"], "9.9")
        XCTAssertEqual(r["result"]?["toys"], 3, "the application's members")
    }

    func testToyMethodsImmediateAndJob() throws {
        let h = DispatcherHarness()
        let p = RecordingPeer(1)
        h.send(h.request(1, "toy/add", #"{"a": 2, "b": 0.5}"#), from: p)
        XCTAssertEqual(p.reply(id: 1)?["result"], 2.5, "answered at once")
        h.send(h.request(2, "toy/add", #"{"a": 2}"#), from: p)
        XCTAssertEqual(errorCode(p.reply(id: 2)), -32602)
        h.send(h.request(3, "toy/count", #"{"to": 4, "workDoneToken": "c"}"#), from: p)
        XCTAssertTrue(h.pump { p.reply(id: 3) != nil })
        XCTAssertEqual(p.reply(id: 3)?["result"], 4)
        XCTAssertEqual(p.progress(token: "c").compactMap { $0["kind"]?.stringValue }, ["begin", "report", "report", "report", "end"])
        XCTAssertEqual(p.progress(token: "c").first?["title"], "toy/count: 4")
    }

    func testParseErrorHasNullId() {
        let h = DispatcherHarness()
        let p = RecordingPeer(1)
        h.send("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"status\"", from: p)
        XCTAssertEqual(p.sent.count, 1)
        XCTAssertEqual(errorCode(p.sent.first), -32700)
        XCTAssertEqual(p.sent.first?["id"], .null)
    }

    func testInvalidRequests() {
        let h = DispatcherHarness()
        let cases: [(String, JSON)] = [
            ("42", .null),
            ("\"status\"", .null),
            ("{\"jsonrpc\":\"1.0\",\"id\":7,\"method\":\"status\"}", 7),
            ("{\"id\":8,\"method\":\"status\"}", 8),
            ("{\"jsonrpc\":\"2.0\",\"id\":9}", 9),
            ("{\"jsonrpc\":\"2.0\",\"id\":10,\"method\":5}", 10),
            ("{\"jsonrpc\":\"2.0\",\"id\":11,\"method\":\"status\",\"params\":\"x\"}", 11),
            ("{\"jsonrpc\":\"2.0\",\"id\":{\"a\":1},\"method\":\"status\"}", .null),
            ("{\"jsonrpc\":\"2.0\",\"id\":[1],\"method\":\"status\"}", .null),
            ("[]", .null),
        ]
        for (text, id) in cases {
            let p = RecordingPeer(1)
            h.send(text, from: p)
            XCTAssertEqual(p.sent.count, 1, text)
            XCTAssertEqual(errorCode(p.sent.first), -32600, text)
            XCTAssertEqual(p.sent.first?["id"], id, text)
        }
    }

    func testNullParamsAreNoParams() {
        // JSON-RPC 2.0 says to omit params; Emacs's jsonrpc.el sends null for none (status, shutdown).
        let h = DispatcherHarness()
        let p = RecordingPeer(1)
        h.send("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"status\",\"params\":null}", from: p)
        XCTAssertEqual(p.reply(id: 1)?["result"]?["queue"], 0)
        h.send("{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"toy/add\",\"params\":null}", from: p)
        XCTAssertEqual(errorCode(p.reply(id: 2)), -32602, "a method with required params says which is missing")
        XCTAssertTrue(p.reply(id: 2)?["error"]?["message"]?.stringValue?.contains("\"a\" is required") ?? false)
        XCTAssertEqual(RPCRequest.decode(try! JSON.parse(Array(#"{"jsonrpc":"2.0","method":"exit","params":null}"#.utf8))),
                       .request(RPCRequest(id: nil, method: "exit", params: nil)))
    }

    func testMethodNotFoundAndUnknownNotificationIsSilent() {
        let h = DispatcherHarness()
        let p = RecordingPeer(1)
        h.send(h.request(3, "sample/nothing"), from: p)
        XCTAssertEqual(errorCode(p.reply(id: 3)), -32601)
        XCTAssertTrue(p.reply(id: 3)?["error"]?["message"]?.stringValue?.contains("sample/nothing") ?? false)
        h.send("{\"jsonrpc\":\"2.0\",\"method\":\"nothing/here\"}", from: p)
        h.send("{\"jsonrpc\":\"2.0\",\"method\":\"$/setTrace\",\"params\":{\"value\":\"off\"}}", from: p)
        XCTAssertEqual(p.sent.count, 1)
    }

    func testInvalidParamsNameTheParameter() throws {
        let h = DispatcherHarness()
        let p = RecordingPeer(1)
        h.send(h.request(1, "test/sleep", "{\"units\":\"many\"}"), from: p)
        h.send(h.request(2, "test/sleep", "{\"units\":0}"), from: p)
        h.send(h.request(3, "test/sleep", "{\"unitz\":3}"), from: p)
        h.send(h.request(4, "test/sleep", "[3, 10]"), from: p)
        h.send(h.request(5, "status", "{\"verbose\":true}"), from: p)
        h.send(h.request(6, "test/sleep", "{\"units\":1,\"workDoneToken\":[1]}"), from: p)
        for id in 1...6 { XCTAssertEqual(errorCode(p.reply(id: .int(Int64(id)))), -32602, "request \(id)") }
        func message(_ id: Int64) -> String { p.reply(id: .int(id))?["error"]?["message"]?.stringValue ?? "" }
        XCTAssertTrue(message(1).contains("\"units\" must be an integer in 1...1000000, got \"many\""), message(1))
        XCTAssertTrue(message(2).contains("\"units\""), message(2))
        XCTAssertTrue(message(3).contains("unknown parameter \"unitz\""), message(3))
        XCTAssertTrue(message(3).contains("units"), "lists what the method takes: \(message(3))")
        XCTAssertTrue(message(4).contains("named parameters"), message(4))
        XCTAssertTrue(message(5).contains("status takes no parameters"), message(5))
        XCTAssertTrue(message(6).contains("workDoneToken"), message(6))
        XCTAssertTrue(h.dispatcher.scheduler.jobIDs.isEmpty, "rejected requests admit no job")
    }

    func testBatchMixesRepliesOmitsNotifications() throws {
        let h = DispatcherHarness()
        let p = RecordingPeer(1)
        h.send("""
            [{"jsonrpc":"2.0","id":1,"method":"status"},
             {"jsonrpc":"2.0","method":"status"},
             {"jsonrpc":"2.0","id":"b","method":"no/such"},
             17,
             {"jsonrpc":"2.0","id":3,"method":"test/sleep","params":{"units":2,"unitMs":1}},
             {"jsonrpc":"2.0","id":4,"method":"test/echo","params":{"value":[1,"two"]}}]
            """, from: p)
        XCTAssertTrue(h.pump { !p.sent.isEmpty })
        XCTAssertEqual(p.sent.count, 1, "one batch reply, sent when the slowest element is done")
        let replies = try XCTUnwrap(p.sent.first?.arrayValue)
        XCTAssertEqual(replies.count, 5)
        XCTAssertEqual(replies.map { $0["id"] }, [1, "b", .null, 3, 4])
        XCTAssertEqual(errorCode(replies[1]), -32601)
        XCTAssertEqual(errorCode(replies[2]), -32600)
        XCTAssertEqual(replies[3]["result"]?["units"], 2)
        XCTAssertEqual(replies[4]["result"], [1, "two"])
    }

    func testBatchOfNotificationsGetsNoReply() {
        let h = DispatcherHarness()
        let p = RecordingPeer(1)
        h.send("[{\"jsonrpc\":\"2.0\",\"method\":\"status\"},{\"jsonrpc\":\"2.0\",\"method\":\"initialized\",\"params\":{}}]", from: p)
        XCTAssertEqual(p.sent.count, 0)
    }

    func testProgressBeginRisingReportsEndThenResult() throws {
        let h = DispatcherHarness()
        let p = RecordingPeer(1)
        h.send(h.request(1, "test/sleep", "{\"units\":8,\"unitMs\":2,\"workDoneToken\":\"tok\"}"), from: p)
        XCTAssertTrue(h.pump { p.reply(id: 1) != nil })
        let values = p.progress(token: "tok")
        XCTAssertEqual(values.first?["kind"], "begin")
        XCTAssertEqual(values.first?["percentage"], 0)
        XCTAssertEqual(values.last?["kind"], "end")
        let reports = values.filter { $0["kind"] == "report" }
        XCTAssertEqual(reports.count, 7)
        let pcts = reports.compactMap { $0["percentage"]?.intValue }
        XCTAssertEqual(pcts, pcts.sorted())
        XCTAssertEqual(Set(pcts).count, pcts.count, "strictly rising")
        XCTAssertTrue(reports.allSatisfy { $0["message"]?.stringValue != nil })
        let endIndex = p.sent.firstIndex { $0["params"]?["value"]?["kind"] == "end" }!
        let replyIndex = p.sent.firstIndex { $0["id"] == 1 }!
        XCTAssertLessThan(endIndex, replyIndex, "end comes before the response")
        XCTAssertEqual(p.reply(id: 1)?["result"]?["units"], 8)
    }

    func testCancelRunningAndQueuedJobs() throws {
        let h = DispatcherHarness()
        let p = RecordingPeer(1)
        h.send(h.request(1, "test/sleep", "{\"units\":1000,\"unitMs\":5,\"workDoneToken\":1}"), from: p)
        XCTAssertTrue(h.pump { p.progress(token: 1).contains { $0["kind"] == "report" } })
        h.send("{\"jsonrpc\":\"2.0\",\"method\":\"$/cancelRequest\",\"params\":{\"id\":1}}", from: p)
        XCTAssertTrue(h.pump(timeout: 2) { p.reply(id: 1) != nil })
        XCTAssertEqual(errorCode(p.reply(id: 1)), -32800)
        XCTAssertEqual(p.progress(token: 1).last?["message"], "cancelled")

        // Job 2 holds the worker in one long unit; job 3 waits and is cancelled before it starts.
        h.send(h.request(2, "test/sleep", "{\"units\":1,\"unitMs\":300}"), from: p)
        h.send(h.request(3, "test/sleep", "{\"units\":5,\"unitMs\":1}"), from: p)
        XCTAssertTrue(h.pump { h.dispatcher.scheduler.snapshot().jobs.first?["state"] == "running" })
        h.send("{\"jsonrpc\":\"2.0\",\"id\":99,\"method\":\"$/cancelRequest\",\"params\":{\"id\":3}}", from: p)
        XCTAssertEqual(errorCode(p.reply(id: 3)), -32800, "a queued job is answered at once")
        XCTAssertEqual(p.reply(id: 99)?["result"], .null)
        XCTAssertTrue(h.pump { p.reply(id: 2) != nil })
        XCTAssertEqual(p.reply(id: 2)?["result"]?["units"], 1)
    }

    func testCancelInsideALongUnit() {
        let h = DispatcherHarness()
        let p = RecordingPeer(1)
        h.send(h.request(1, "test/sleep", "{\"units\":1,\"unitMs\":20000}"), from: p)
        XCTAssertTrue(h.pump { h.dispatcher.scheduler.snapshot().jobs.first?["state"] == "running" })
        usleep(50_000)
        let t0 = Date()
        h.send("{\"jsonrpc\":\"2.0\",\"method\":\"$/cancelRequest\",\"params\":{\"id\":1}}", from: p)
        XCTAssertTrue(h.pump(timeout: 5) { p.reply(id: 1) != nil })
        XCTAssertEqual(errorCode(p.reply(id: 1)), -32800)
        XCTAssertLessThan(Date().timeIntervalSince(t0), 1.0, "the unit polled the flag")
        XCTAssertTrue(h.dispatcher.scheduler.jobIDs.isEmpty)
    }

    func testCancelUnknownIdIsIgnoredAndBadCancelIsInvalidParams() {
        let h = DispatcherHarness()
        let p = RecordingPeer(1)
        h.send("{\"jsonrpc\":\"2.0\",\"method\":\"$/cancelRequest\",\"params\":{\"id\":12345}}", from: p)
        XCTAssertEqual(p.sent.count, 0)
        h.send("{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"$/cancelRequest\",\"params\":{\"id\":{}}}", from: p)
        XCTAssertEqual(errorCode(p.reply(id: 5)), -32602)
    }

    func testCancelOnlyReachesTheSameConnection() {
        let h = DispatcherHarness()
        let a = RecordingPeer(1), b = RecordingPeer(2)
        h.send(h.request(1, "test/sleep", "{\"units\":20,\"unitMs\":2}"), from: a)
        h.send("{\"jsonrpc\":\"2.0\",\"method\":\"$/cancelRequest\",\"params\":{\"id\":1}}", from: b)
        XCTAssertTrue(h.pump { a.reply(id: 1) != nil })
        XCTAssertEqual(a.reply(id: 1)?["result"]?["units"], 20)
    }

    func testShortJobOvertakesLongOne() {
        let h = DispatcherHarness()
        let p = RecordingPeer(1)
        h.send(h.request(1, "test/sleep", "{\"units\":60,\"unitMs\":5}"), from: p)
        XCTAssertTrue(h.pump { h.dispatcher.scheduler.snapshot().jobs.first?["units"]?.intValue ?? 0 >= 2 })
        h.send(h.request(2, "test/sleep", "{\"units\":3,\"unitMs\":5}"), from: p)
        XCTAssertTrue(h.pump { p.replies.count == 2 })
        XCTAssertEqual(p.replies.map { $0["id"] }, [2, 1], "the short job, started later, finishes first")
    }

    func testQueueLimitGivesBusy() {
        let h = DispatcherHarness(maxQueue: 2)
        let p = RecordingPeer(1)
        for id in 1...3 { h.send(h.request(id, "test/sleep", "{\"units\":3,\"unitMs\":20}"), from: p) }
        XCTAssertEqual(errorCode(p.reply(id: 3)), -32001)
        XCTAssertTrue(h.pump { p.replies.count == 3 })
        h.send(h.request(4, "test/sleep", "{\"units\":1,\"unitMs\":1}"), from: p)
        XCTAssertTrue(h.pump { p.reply(id: 4) != nil })
        XCTAssertEqual(p.reply(id: 4)?["result"]?["units"], 1, "admitted again once the queue drained")
    }

    func testDuplicatePendingIdIsRejected() {
        let h = DispatcherHarness()
        let p = RecordingPeer(1)
        h.send(h.request(1, "test/sleep", "{\"units\":5,\"unitMs\":5}"), from: p)
        h.send(h.request(1, "test/sleep", "{\"units\":1,\"unitMs\":1}"), from: p)
        XCTAssertEqual(errorCode(p.replies.first), -32600)
        XCTAssertTrue(h.pump { p.replies.count == 2 })
    }

    func testPeerGoneCancelsItsJobs() {
        let h = DispatcherHarness()
        let p = RecordingPeer(1)
        h.send(h.request(1, "test/sleep", "{\"units\":1000,\"unitMs\":2}"), from: p)
        h.send(h.request(2, "test/sleep", "{\"units\":1000,\"unitMs\":2}"), from: p)
        XCTAssertTrue(h.pump { h.dispatcher.scheduler.snapshot().jobs.first?["units"]?.intValue ?? 0 >= 1 })
        h.dispatcher.peerGone(p)
        XCTAssertTrue(h.pump(timeout: 2) { h.dispatcher.scheduler.jobIDs.isEmpty })
        XCTAssertEqual(p.replies.count, 0, "nothing is sent to a gone peer")
    }

    func testFailingJobAnswersInternalError() {
        let h = DispatcherHarness()
        let p = RecordingPeer(1)
        h.send(h.request(1, "test/sleep", "{\"units\":5,\"unitMs\":1,\"failAt\":2}"), from: p)
        XCTAssertTrue(h.pump { p.reply(id: 1) != nil })
        XCTAssertEqual(errorCode(p.reply(id: 1)), -32603)
    }

    func testNotificationJobRunsWithoutReply() {
        let h = DispatcherHarness()
        let p = RecordingPeer(1)
        h.send("{\"jsonrpc\":\"2.0\",\"method\":\"test/sleep\",\"params\":{\"units\":2,\"unitMs\":1}}", from: p)
        XCTAssertEqual(h.dispatcher.scheduler.jobIDs.count, 1)
        XCTAssertTrue(h.pump { h.dispatcher.scheduler.jobIDs.isEmpty })
        XCTAssertEqual(p.sent.count, 0)
    }

    func testPeriodicCheckpoints() throws {
        let h = DispatcherHarness(checkpointEvery: 3)
        let p = RecordingPeer(1)
        h.send(h.request(1, "test/sleep", "{\"units\":100000,\"unitMs\":1,\"checkpoint\":\"c1\"}"), from: p)
        let file = h.stateDir + "/test/c1.json"
        var seen: Set<Int64> = []
        XCTAssertTrue(h.pump {
            if let d = try? Data(contentsOf: URL(fileURLWithPath: file)), let u = (try? JSON.parse(Array(d)))?["units"]?.intValue {
                seen.insert(u)
            }
            return seen.count >= 3
        })
        XCTAssertTrue(seen.allSatisfy { $0 % 3 == 0 }, "written every 3 units: \(seen.sorted())")
        let mode = try FileManager.default.attributesOfItem(atPath: file)[.posixPermissions] as? Int
        XCTAssertEqual(mode, 0o600)
    }

    func testShutdownCheckpointsStopsJobsThenOnlyExit() throws {
        let h = DispatcherHarness(checkpointEvery: 1_000_000)
        let p = RecordingPeer(1)
        h.send(h.request(1, "test/sleep", "{\"units\":100000,\"unitMs\":2,\"checkpoint\":\"c2\"}"), from: p)
        XCTAssertTrue(h.pump { h.dispatcher.scheduler.snapshot().jobs.first?["units"]?.intValue ?? 0 >= 5 })
        let file = h.stateDir + "/test/c2.json"
        XCTAssertFalse(FileManager.default.fileExists(atPath: file))
        let before = h.dispatcher.scheduler.snapshot().jobs.first?["units"]?.intValue ?? 0
        h.send(h.request(2, "shutdown"), from: p)
        h.send(h.request(3, "status"), from: p)
        XCTAssertEqual(errorCode(p.reply(id: 3)), -32600, "nothing but exit once shutdown began")
        XCTAssertTrue(h.pump { p.reply(id: 2) != nil })
        XCTAssertEqual(p.reply(id: 2)?["result"], .null)
        XCTAssertEqual(errorCode(p.reply(id: 1)), -32003, "running jobs stop with shutting-down")
        let saved = try JSON.parse(Array(Data(contentsOf: URL(fileURLWithPath: file))))
        XCTAssertGreaterThanOrEqual(saved["units"]?.intValue ?? -1, before, "checkpoint taken at shutdown")
        h.send(h.request(4, "shutdown"), from: p)
        XCTAssertEqual(p.reply(id: 4)?["result"], .null, "a second shutdown is answered too")
        XCTAssertNil(h.host.exitCode)
        h.send("{\"jsonrpc\":\"2.0\",\"method\":\"exit\"}", from: p)
        XCTAssertEqual(h.host.exitCode, 0)
    }

    func testExitWithoutShutdownMeansCode1() {
        let h = DispatcherHarness()
        let p = RecordingPeer(1)
        h.send("{\"jsonrpc\":\"2.0\",\"method\":\"exit\"}", from: p)
        XCTAssertEqual(h.host.exitCode, 1)
    }

    func testInitializeDescribesTheServer() throws {
        let h = DispatcherHarness()
        let p = RecordingPeer(1)
        h.send(h.request(1, "initialize", "{\"processId\":1,\"capabilities\":{},\"clientInfo\":{\"name\":\"t\"}}"), from: p)
        let r = try XCTUnwrap(p.reply(id: 1)?["result"])
        XCTAssertEqual(r["serverInfo"], ["name": "toyd", "version": "9.9"])
        XCTAssertEqual(r["capabilities"]?["workDoneProgress"], true)
        XCTAssertEqual(r["capabilities"]?["methods"], ["initialize", "shutdown", "status", "toy/add", "toy/count", "test/sleep",
                                                        "test/echo"])
    }

    func testHooksRunOnTheWorker() {
        let h = DispatcherHarness()
        let p = RecordingPeer(1)
        h.send(h.request(1, "toy/count", #"{"to": 3}"#), from: p)
        XCTAssertTrue(h.pump { p.reply(id: 1) != nil })
        XCTAssertGreaterThan(h.app.afterWorkCalls, 0, "after the last unit at least")
        XCTAssertEqual(h.app.checkpointCalls, 0)
        h.send(h.request(2, "shutdown"), from: p)
        XCTAssertTrue(h.pump { p.reply(id: 2) != nil })
        XCTAssertEqual(h.app.checkpointCalls, 1, "the application's state is saved once at shutdown")
        h.send(h.request(3, "shutdown"), from: p)
        XCTAssertEqual(h.app.checkpointCalls, 1)
    }

    /// Fair sharing of the worker: a job of short units admitted during a job of long units runs
    /// many units per long unit, so it finishes after a few long units, not after as many as it has.
    func testShortUnitsAreNotPacedByLongOnes() {
        let h = DispatcherHarness()
        let p = RecordingPeer(1)
        h.send(h.request(1, "test/sleep", #"{"units": 1000, "unitMs": 40}"#), from: p)
        usleep(60_000)
        let t0 = Date()
        h.send(h.request(2, "test/sleep", #"{"units": 20, "unitMs": 2}"#), from: p)
        XCTAssertTrue(h.pump(timeout: 20) { p.reply(id: 2) != nil })
        let elapsed = Date().timeIntervalSince(t0)
        // Round-robin would need 20 long units (0.8 s); fair sharing about 40 ms of short work plus a
        // couple of long units.
        XCTAssertLessThan(elapsed, 0.5, "short job took \(elapsed) s")
        h.send("{\"jsonrpc\":\"2.0\",\"method\":\"$/cancelRequest\",\"params\":{\"id\":1}}", from: p)
        XCTAssertTrue(h.pump { p.reply(id: 1) != nil })
    }
}
