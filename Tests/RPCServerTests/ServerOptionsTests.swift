import XCTest
@testable import RPCServer

/// The server's flags: what `usage` lists is what `parse` reads, `--flag=value`, and the errors.
final class ServerOptionsTests: XCTestCase {
    private func parse(_ args: [String]) throws -> ServerOptions {
        var o = ServerOptions(runtimeDirectory: "toy", socketName: "toyd.sock")
        var a = Arguments(args)
        while let flag = a.nextFlag() { try o.parse(flag, &a) }
        try o.validate()
        return o
    }

    func testEveryFlagInTheUsageIsRead() throws {
        let usage = ServerOptions(runtimeDirectory: "toy", socketName: "toyd.sock").usage
        let flags = usage.split(separator: "\n").compactMap { $0.split(separator: " ").first }.filter { $0.hasPrefix("--") }
        XCTAssertEqual(flags.count, 13, usage)
        for flag in flags.map(String.init) {
            let value = flag == "--socket" ? "/tmp/t.sock" : flag == "--log-level" ? "debug" : "3"
            XCTAssertNoThrow(try parse(flag == "--enable-test-methods" ? [flag] : [flag, value]), flag)
        }
        XCTAssertTrue(usage.contains("$XDG_RUNTIME_DIR/toy/toyd.sock"), usage)
    }

    func testValuesEqualsFormAndDefaults() throws {
        let o = try parse(["--max-queue=3", "--socket", "/tmp/x.sock", "--enable-test-methods", "--log-level=warn"])
        XCTAssertEqual(o.maxQueue, 3)
        XCTAssertEqual(o.socketPath, "/tmp/x.sock")
        XCTAssertTrue(o.enableTestMethods)
        XCTAssertEqual(o.logLevel, .warn)
        let d = try parse([])
        XCTAssertEqual(d.socketPath, d.defaultSocketPath)
        XCTAssertTrue(d.socketPath.hasSuffix("/toyd.sock"))
        XCTAssertEqual([d.maxConnections, d.maxMessageBytes, d.maxQueue, d.checkpointEvery], [64, 16 << 20, 32, 25])
        XCTAssertEqual([d.maxBatch, d.maxReplyBytes, d.maxPendingBytes, d.frameTimeout, d.longJobShare],
                       [1000, 64 << 20, 64 << 20, 30, 50])
        XCTAssertFalse(d.enableTestMethods)
    }

    func testIdleExitTakesDurations() throws {
        XCTAssertEqual(try parse([]).idleExit, 0, "a hand-started server never leaves by itself")
        for (text, seconds) in [("30m", 1800.0), ("90s", 90), ("0", 0), ("2", 2), ("1.5h", 5400), ("250ms", 0.25), (" 1H ", 3600)] {
            XCTAssertEqual(try parse(["--idle-exit", text]).idleExit, seconds, text)
        }
        for text in ["", "m", "5x", "-5m", "1e3", "5 m", "1h30m", "nan", "inf", "999999h"] {
            XCTAssertNil(DurationText.seconds(text), text)
        }
        XCTAssertEqual([1800, 90, 2, 5400, 0.25, 7200, 1.5].map(DurationText.describe), ["30m", "90s", "2s", "90m", "250ms", "2h", "1.5s"])
    }

    func testBadFlagsSayWhatIsWrong() {
        for (args, needle) in [(["--max-queue", "0"], "positive integer"), (["--log-level", "loud"], "--log-level"),
                               (["--frobnicate"], "unknown option \"--frobnicate\""), (["--socket"], "needs a value"),
                               (["--long-job-share", "100"], "1...99"), (["--max-batch", "-1"], "positive integer"),
                               (["--socket", "/tmp/" + String(repeating: "x", count: 120)], "at most 107"),
                               (["--idle-exit", "soon"], "--idle-exit needs a duration"), (["--idle-exit", "-1s"], "got \"-1s\""),
                               (["--idle-exit"], "needs a value")] {
            XCTAssertThrowsError(try parse(args), "\(args)") {
                XCTAssertTrue("\($0)".contains(needle), "\(args): \($0)")
            }
        }
    }
}
