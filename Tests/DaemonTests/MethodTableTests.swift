import Foundation
import XCTest
@testable import Daemon
import RPCServer

/// erudiffd's methods in the server, without sockets or models: what is served (the test methods only
/// with `--enable-test-methods`), what `initialize` and `status` say of erudiffd, `-32002` without a
/// model, and the command line that joins the server's flags and the engine's.
final class MethodTableTests: XCTestCase {
    private final class Client: Peer {
        let peerID = 1
        var sent: [JSON] = []
        func send(_ message: JSON) { sent.append(message) }
    }

    private var stateDir = ""

    override func setUp() {
        stateDir = NSTemporaryDirectory() + "daemon-tests-\(getpid())-\(UUID().uuidString)"
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: stateDir)
    }

    /// Sends each request (`[method, params]`) to a dispatcher over erudiffd's table and returns the
    /// replies, which come at once: none of these requests reaches the worker.
    private func replies(_ flags: [String], _ requests: [(String, String)]) throws -> [JSON] {
        let options = try DaemonOptions.parse(["--state-dir", stateDir] + flags)
        let dispatcher = Dispatcher(methods: .erudiff(Engine(options: options)),
                                    scheduler: Scheduler(maxJobs: 4, checkpointEvery: 1) {})
        let client = Client()
        for (i, (method, params)) in requests.enumerated() {
            let text = #"{"jsonrpc": "2.0", "id": \#(i), "method": "\#(method)", "params": \#(params)}"#
            dispatcher.receive(Array(text.utf8), from: client)
        }
        XCTAssertEqual(client.sent.count, requests.count)
        return client.sent
    }

    func testTestMethodsOnlyWithTheFlag() throws {
        let without = try replies([], [("test/sleep", "{}"), ("test/echo", #"{"value": 1}"#)])
        XCTAssertEqual(without.map { $0["error"]?["code"] }, [-32601, -32601])
        let with = try replies(["--enable-test-methods"], [("test/echo", #"{"value": [1]}"#)])
        XCTAssertEqual(with.first?["result"], [1])
    }

    func testInitializeAndStatusDescribeErudiffd() throws {
        let r = try replies([], [("initialize", "{}"), ("status", "{}")])
        XCTAssertEqual(r[0]["result"]?["serverInfo"]?["name"], "erudiffd")
        let methods = try XCTUnwrap(r[0]["result"]?["capabilities"]?["methods"]?.arrayValue?.compactMap(\.stringValue))
        for m in ["initialize", "shutdown", "status", "sample", "matchDistributions", "rlStep", "evaluate", "encode",
                  "models/list", "models/load", "models/unload", "adapters/save", "adapters/load", "adapters/reset", "images/grid"] {
            XCTAssertTrue(methods.contains(m), m)
        }
        XCTAssertFalse(methods.contains { $0.hasPrefix("test/") })
        XCTAssertEqual(r[1]["result"]?["models"], .array([]), "the engine's models, through the status hook")
        XCTAssertEqual(r[1]["result"]?["stateDir"], .string(stateDir))
        XCTAssertEqual(r[1]["result"]?["version"], r[0]["result"]?["serverInfo"]?["version"])
    }

    func testEngineMethodsWithoutAModelAnswer32002() throws {
        let r = try replies([], [("sample", #"{"prompt": "a stop sign"}"#), ("matchDistributions", #"{"model": "other"}"#)])
        XCTAssertEqual(r.map { $0["error"]?["code"] }, [-32002, -32002])
        XCTAssertEqual(r[1]["error"]?["data"]?["model"], "other")
        XCTAssertTrue(r[0]["error"]?["message"]?.stringValue?.contains("models/load") ?? false)
    }

    func testCommandLineJoinsServerAndEngineFlags() throws {
        let usage = DaemonOptions.usage
        XCTAssertTrue(usage.contains(DaemonOptions().server.usage), "--help lists the server's flags")
        for flag in ["--model", "--no-default-model", "--minilm", "--threads", "--state-dir", "--sample-store", "--sample-ttl"] {
            XCTAssertTrue(usage.contains("  \(flag) "), flag)
        }
        let o = try DaemonOptions.parse(["--max-queue=3", "--threads", "2", "--model", "a=/m", "--checkpoint-every", "7"])
        XCTAssertEqual(o.server.maxQueue, 3)
        XCTAssertEqual(o.server.checkpointEvery, 7)
        XCTAssertEqual(o.threads, 2)
        XCTAssertEqual(o.models.map(\.name), ["a"])
        XCTAssertThrowsError(try DaemonOptions.parse(["--help"])) { XCTAssertTrue(($0 as! UsageError).isHelp) }
        XCTAssertThrowsError(try DaemonOptions.parse(["--model", "noequals"])) { XCTAssertTrue("\($0)".contains("NAME=PATH")) }
    }
}
