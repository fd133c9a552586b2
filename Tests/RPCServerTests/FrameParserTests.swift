import XCTest
@testable import RPCServer

/// The incremental frame parser: both framings, frames split anywhere, several per read, limits and
/// malformed headers.
final class FrameParserTests: XCTestCase {
    private func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }
    private func lsp(_ body: String) -> [UInt8] { Framing.lsp.encode(bytes(body)) }

    private func messages(_ events: [FrameParser.Event]) -> [String] {
        events.compactMap { if case .message(let b) = $0 { return String(decoding: b, as: UTF8.self) }; return nil }
    }

    func testDetectsFramingFromFirstByte() {
        var a = FrameParser(maxMessageBytes: 100)
        _ = a.feed(bytes("Content-Length: 2\r\n\r\n{}"))
        XCTAssertEqual(a.framing, .lsp)
        var b = FrameParser(maxMessageBytes: 100)
        _ = b.feed(bytes("content-length: 2\r\n\r\n{}"))
        XCTAssertEqual(b.framing, .lsp)
        var c = FrameParser(maxMessageBytes: 100)
        _ = c.feed(bytes("{}\n"))
        XCTAssertEqual(c.framing, .line)
        var d = FrameParser(maxMessageBytes: 100)
        XCTAssertEqual(d.framing, nil)
        _ = d.feed(bytes("  \n[1]\n"))
        XCTAssertEqual(d.framing, .line)
    }

    func testLineFramingSeveralPerReadCRLFAndBlankLines() {
        var p = FrameParser(maxMessageBytes: 100)
        let events = p.feed(bytes("{\"a\":1}\n\n  \r\n{\"b\":2}\r\n{\"c\""))
        XCTAssertEqual(messages(events), ["{\"a\":1}", "{\"b\":2}"])
        XCTAssertEqual(p.pendingBytes, 4)
        XCTAssertEqual(messages(p.feed(bytes(":3}\n"))), ["{\"c\":3}"])
        XCTAssertEqual(p.pendingBytes, 0)
    }

    func testLSPWithOtherHeadersAndBodyContainingHeaderEnd() {
        let body = "{\"text\":\"a\\r\\n\\r\\nb\"}"
        var stream = bytes("Content-Type: application/vscode-jsonrpc; charset=utf-8\r\nCONTENT-LENGTH:   \(body.utf8.count)  \r\n\r\n")
        stream += bytes(body)
        stream += lsp("[1,2]")
        var p = FrameParser(maxMessageBytes: 1000)
        XCTAssertEqual(messages(p.feed(stream)), [body, "[1,2]"])
        XCTAssertEqual(p.pendingBytes, 0)
    }

    func testLSPBodyWithRawCRLFInside() {
        // A body may itself contain "\r\n\r\n" (JSON whitespace): only Content-Length delimits it.
        let body = "{\r\n\r\n\"a\": 1}"
        var p = FrameParser(maxMessageBytes: 1000)
        XCTAssertEqual(messages(p.feed(lsp(body) + lsp("2"))), [body, "2"])
    }

    /// Every way of cutting a stream of frames into reads yields the same messages.
    func testFramesSplitAtRandomPointsBothFramings() {
        var rng = SystemRandomNumberGenerator()
        let bodies = (0..<40).map { i in "{\"jsonrpc\":\"2.0\",\"id\":\(i),\"method\":\"m\",\"params\":{\"s\":\"\(String(repeating: "é", count: i))\"}}" }
        for framing in [Framing.lsp, .line] {
            let stream = bodies.flatMap { framing.encode(Array($0.utf8)) }
            for _ in 0..<50 {
                var p = FrameParser(maxMessageBytes: 10_000)
                var got: [String] = []
                var i = 0
                while i < stream.count {
                    let n = Int.random(in: 1...40, using: &rng)
                    got += messages(p.feed(stream[i..<min(stream.count, i + n)]))
                    i += n
                }
                XCTAssertEqual(got, bodies, "\(framing)")
                XCTAssertEqual(p.pendingBytes, 0)
            }
            // one byte at a time
            var p = FrameParser(maxMessageBytes: 10_000)
            var got: [String] = []
            for b in stream { got += messages(p.feed([b])) }
            XCTAssertEqual(got, bodies)
        }
    }

    /// Frames bigger than the spill size (kept as pieces while unfinished) among small ones, split at
    /// random points into reads of up to 100 KB, CRLF endings falling on piece boundaries too.
    func testBigFramesInPiecesBothFramings() {
        var rng = SystemRandomNumberGenerator()
        let big = FrameParser.spillBytes
        let sizes = [10, 3 * big + 7, 20, big, big - 1, 5 * big / 2, 0]
        let bodies = sizes.enumerated().map { i, n in "{\"id\":\(i),\"s\":\"" + String(repeating: "abcdefg", count: n / 7 + 1).prefix(n) + "\"}" }
        for framing in [Framing.lsp, .line] {
            let stream = bodies.flatMap { b -> [UInt8] in
                framing == .line ? Array((b + "\r\n").utf8) : framing.encode(Array(b.utf8))
            }
            for round in 0..<30 {
                var p = FrameParser(maxMessageBytes: 4 * big)
                var got: [String] = []
                var i = 0
                while i < stream.count {
                    let n = round == 0 ? big : Int.random(in: 1...100_000, using: &rng)
                    let chunk = stream[i..<min(stream.count, i + n)]
                    got += messages(p.feed(chunk))
                    i += n
                    XCTAssertLessThanOrEqual(p.pendingBytes, 4 * big + 64)
                }
                XCTAssertEqual(got, bodies, "\(framing)")
                XCTAssertEqual(p.pendingBytes, 0)
                XCTAssertFalse(p.failed)
            }
        }
    }

    func testBigUnfinishedFrameCountsAsPendingAndOverlongLineInPiecesFails() {
        let big = FrameParser.spillBytes
        var p = FrameParser(maxMessageBytes: 10 * big)
        XCTAssertEqual(p.feed(bytes("Content-Length: \(4 * big)\r\n\r\n") + Array(repeating: 120, count: 2 * big)), [])
        XCTAssertEqual(p.pendingBytes, 2 * big)
        XCTAssertEqual(p.feed(Array(repeating: 120, count: big)), [])
        XCTAssertEqual(p.pendingBytes, 3 * big)
        let events = p.feed(Array(repeating: 120, count: big) + lsp("{}"))
        XCTAssertEqual(events.count, 2)
        if case .message(let body) = events[0] { XCTAssertEqual(body.count, 4 * big) } else { XCTFail("\(events)") }
        XCTAssertEqual(messages([events[1]]), ["{}"])

        var q = FrameParser(maxMessageBytes: 3 * big)
        XCTAssertEqual(q.feed(Array(repeating: 121, count: 2 * big)), [])
        XCTAssertEqual(q.feed(Array(repeating: 121, count: big)), [])
        XCTAssertEqual(q.feed(Array(repeating: 121, count: 2)), [.tooLarge(declared: nil)])
        XCTAssertTrue(q.failed)
        XCTAssertEqual(q.pendingBytes, 0)
        var r = FrameParser(maxMessageBytes: 3 * big)
        XCTAssertEqual(r.feed(Array(repeating: 121, count: 2 * big)), [])
        XCTAssertEqual(r.feed(Array(repeating: 121, count: big) + [13, 10]).count, 1, "a line of exactly the limit, CRLF")
        XCTAssertEqual(r.feed(Array(repeating: 121, count: 2 * big)), [])
        XCTAssertEqual(r.feed(Array(repeating: 121, count: big + 1) + [10]), [.tooLarge(declared: nil)])
    }

    func testOversizedContentLengthIsRejectedBeforeTheBodyArrives() {
        var p = FrameParser(maxMessageBytes: 1000)
        XCTAssertEqual(p.feed(bytes("Content-Length: 1001\r\n\r\n")), [.tooLarge(declared: 1001)])
        XCTAssertTrue(p.failed)
        XCTAssertEqual(p.feed(bytes("{}")), [], "a failed parser stays silent")
    }

    func testAbsurdContentLength() {
        var p = FrameParser(maxMessageBytes: 1000)
        XCTAssertEqual(p.feed(bytes("Content-Length: 99999999999999999999999999\r\n\r\n")), [.tooLarge(declared: nil)])
        var q = FrameParser(maxMessageBytes: 1000)
        XCTAssertEqual(q.feed(bytes("Content-Length: 9223372036854775807\r\n\r\n")), [.tooLarge(declared: nil)])
    }

    func testFrameExactlyAtTheLimitIsAccepted() {
        let body = "\"" + String(repeating: "x", count: 98) + "\""
        var p = FrameParser(maxMessageBytes: 100)
        XCTAssertEqual(messages(p.feed(lsp(body))), [body])
        var q = FrameParser(maxMessageBytes: 100)
        XCTAssertEqual(messages(q.feed(bytes(body + "\r\n"))), [body])
    }

    func testOverlongLine() {
        var p = FrameParser(maxMessageBytes: 100)
        XCTAssertEqual(p.feed(bytes(String(repeating: "x", count: 150))), [.tooLarge(declared: nil)])
        var q = FrameParser(maxMessageBytes: 100)
        XCTAssertEqual(messages(q.feed(bytes("[1]\n" + String(repeating: "y", count: 101) + "\n"))).count, 1)
        XCTAssertTrue(q.failed)
    }

    func testGarbageHeaders() {
        let cases = [
            "Content-Length 12\r\n\r\n",                 // no colon
            "Content-Length: twelve\r\n\r\n",            // not a number
            "Content-Length: -5\r\n\r\n",                // negative
            "Content-Type: text/plain\r\n\r\n",         // no length
            "Content-Length: 2\r\nContent-Length: 2\r\n\r\n",
            "Content-Length: 2\r\nBad Name: x\r\n\r\n",
        ]
        for c in cases {
            var p = FrameParser(maxMessageBytes: 100)
            let events = p.feed(bytes(c))
            XCTAssertEqual(events.count, 1, c.debugDescription)
            guard case .badHeader = events.first else { return XCTFail("expected badHeader for \(c.debugDescription), got \(events)") }
            XCTAssertTrue(p.failed)
        }
    }

    func testEndlessHeaderBlock() {
        var p = FrameParser(maxMessageBytes: 1 << 20)
        var events: [FrameParser.Event] = []
        events += p.feed(bytes("Content-Length: 5\r\n"))
        for _ in 0..<1000 where events.isEmpty { events += p.feed(bytes("X-Padding: aaaaaaaaaaaaaaaaaaaaaaaa\r\n")) }
        guard case .badHeader = events.first else { return XCTFail("expected badHeader, got \(events)") }
    }

    func testHalfFrameStaysPending() {
        var p = FrameParser(maxMessageBytes: 100)
        XCTAssertEqual(p.feed(bytes("Content-Length: 10\r\n\r\n{\"a\"")), [])
        XCTAssertEqual(p.pendingBytes, 4)
        XCTAssertFalse(p.failed)
    }

    func testEncodeAddsTheRightEnvelope() {
        XCTAssertEqual(String(decoding: Framing.lsp.encode(bytes("{}")), as: UTF8.self), "Content-Length: 2\r\n\r\n{}")
        XCTAssertEqual(String(decoding: Framing.line.encode(bytes("{}")), as: UTF8.self), "{}\n")
        // Content-Length counts bytes, not characters.
        XCTAssertEqual(String(decoding: Framing.lsp.encode(bytes("\"é\"")), as: UTF8.self), "Content-Length: 4\r\n\r\n\"é\"")
    }
}
