import Foundation
import XCTest
@testable import RPCServer

/// Issue 35 at the level of the dispatcher: batch and reply limits, names not echoed whole,
/// `initialize`'s types.
final class HardeningTests: XCTestCase {
    func testBatchLengthIsCountedWithoutParsing() {
        func count(_ s: String) -> Int? { Dispatcher.Incoming.batchLength(Array(s.utf8)) }
        XCTAssertNil(count(#"{"a": [1, 2]}"#))
        XCTAssertNil(count("  7"))
        XCTAssertEqual(count("[]"), 0)
        XCTAssertEqual(count(" [ ] "), 0)
        XCTAssertEqual(count("[1]"), 1)
        XCTAssertEqual(count(#"[{"a":[1,2,{"b":","}]}, "x,]", [3,4] ,null]"#), 4)
        XCTAssertEqual(count(#"["\"],", 2]"#), 2)
        XCTAssertEqual(count("[1,2,3"), 3, "an unfinished array counts what it has (the parse reports it)")
    }

    func testBatchOverTheLimitIsOneErrorNamingTheFlag() {
        let h = DispatcherHarness(limits: DispatchLimits(maxBatch: 3))
        let p = RecordingPeer(1)
        h.send("[" + (1...4).map { h.request($0, "status") }.joined(separator: ",") + "]", from: p)
        XCTAssertEqual(p.sent.count, 1)
        XCTAssertEqual(errorCode(p.sent[0]), -32600)
        XCTAssertEqual(p.sent[0]["id"], .null)
        XCTAssertTrue(p.sent[0]["error"]?["message"]?.stringValue?.contains("--max-batch") ?? false)
        XCTAssertEqual(p.sent[0]["error"]?["data"]?["maxBatch"], 3)
        h.send("[" + (1...3).map { h.request($0, "status") }.joined(separator: ",") + "]", from: p)
        XCTAssertEqual(p.sent.last?.arrayValue?.count, 3)
    }

    func testRepliesOverTheLimitBecomeErrors() {
        let h = DispatcherHarness(limits: DispatchLimits(maxBatch: 100, maxReplyBytes: 300))
        let p = RecordingPeer(1)
        let big = String(repeating: "x", count: 400)
        h.send(h.request(1, "test/echo", #"{"value":"\#(big)"}"#), from: p)
        XCTAssertEqual(errorCode(p.reply(id: 1)), -32005)
        XCTAssertEqual(p.reply(id: 1)?["error"]?["data"]?["maxReplyBytes"], 300)
        let items = (1...6).map { h.request($0 + 10, "test/echo", #"{"value":"\#(String(repeating: "y", count: 60))"}"#) }
        h.send("[" + items.joined(separator: ",") + "]", from: p)
        let batch = p.sent.last?.arrayValue ?? []
        XCTAssertEqual(batch.map { $0["id"] }, (11...16).map { JSON.int(Int64($0)) })
        XCTAssertNotNil(batch[0]["result"])
        XCTAssertEqual(errorCode(batch[5]), -32005)
        XCTAssertLessThan(JSON.array(batch).serialized().count, 300 + 6 * 200)
    }

    func testUnknownMethodNameIsNotEchoedWhole() {
        let h = DispatcherHarness()
        let p = RecordingPeer(1)
        let name = String(repeating: "m", count: 100_000)
        h.send(h.request(1, name), from: p)
        let message = p.reply(id: 1)?["error"]?["message"]?.stringValue ?? ""
        XCTAssertEqual(errorCode(p.reply(id: 1)), -32601)
        XCTAssertLessThan(message.count, 120)
        XCTAssertTrue(message.contains("100000 bytes"), message)
    }

    func testInitializeChecksTheTypesLSPGives() {
        let h = DispatcherHarness()
        let p = RecordingPeer(1)
        let bad = [#"{"processId":"x"}"#, #"{"clientInfo":{"name":1}}"#, #"{"capabilities":[]}"#, #"{"trace":"loud"}"#,
                   #"{"rootUri":5}"#, #"{"workspaceFolders":[{"uri":"file:///"}]}"#]
        for (i, params) in bad.enumerated() {
            h.send(h.request(i + 1, "initialize", params), from: p)
            XCTAssertEqual(errorCode(p.reply(id: .int(Int64(i + 1)))), -32602, params)
        }
        h.send(h.request(50, "initialize", #"{"processId":null,"clientInfo":{"name":"e"},"rootUri":null,"capabilities":{},"# +
                         #""trace":"off","workspaceFolders":[{"uri":"file:///","name":"r"}],"other":1}"#), from: p)
        XCTAssertNotNil(p.reply(id: 50)?["result"]?["serverInfo"])
    }
}
