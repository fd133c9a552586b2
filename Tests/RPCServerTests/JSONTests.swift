import XCTest
@testable import RPCServer

/// The jansson-backed JSON value: parse and print round trips, edge values, hostile input.
final class JSONTests: XCTestCase {
    func testRoundTripOfNestedValues() throws {
        let v: JSON = ["a": [1, 2.5, "x", nil, true, false], "b": ["c": ["d": -9_007_199_254_740_993]], "": "empty key",
                       "u": "héllo ✓ 😀", "n": "nul\u{0}inside", "q": "line\nbreak \"quoted\" \\"]
        let text = v.text
        XCTAssertFalse(text.contains("\n"), "serialized JSON must fit newline framing")
        XCTAssertEqual(try JSON.parse(text), v)
    }

    func testScalarsAndNumbers() throws {
        XCTAssertEqual(try JSON.parse("42"), .int(42))
        XCTAssertEqual(try JSON.parse("-0.5e3"), .double(-500))
        XCTAssertEqual(try JSON.parse("\"s\""), .string("s"))
        XCTAssertEqual(try JSON.parse("null"), .null)
        XCTAssertEqual(JSON.double(.nan).text, "null")
        XCTAssertEqual(JSON.double(0.25).text, "0.25")
        XCTAssertEqual(JSON.int(Int64.max).text, "9223372036854775807")
    }

    func testSortedKeysMakeOutputDeterministic() {
        let v: JSON = ["z": 1, "a": 2, "m": ["y": 1, "b": 2]]
        XCTAssertEqual(v.text, "{\"a\":2,\"m\":{\"b\":2,\"y\":1},\"z\":1}")
    }

    func testRejectsBadInputWithPosition() {
        for bad in ["", "{", "{\"a\":}", "[1,]", "nul", "{\"a\":1,\"a\":2}", "\"\u{1}\"", "1 2", "[\"\\ud800\"]"] {
            XCTAssertThrowsError(try JSON.parse(bad), bad.debugDescription) { error in
                XCTAssertTrue(error is JSON.ParseError)
            }
        }
        XCTAssertThrowsError(try JSON.parse([0x22, 0xff, 0xfe, 0x22]), "invalid UTF-8")
    }

    func testDeepNestingIsAnErrorNotACrash() {
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        XCTAssertThrowsError(try JSON.parse(deep))
    }

    func testIntegerOverflowIsAnError() {
        XCTAssertThrowsError(try JSON.parse("123456789012345678901234567890"))
    }
}
