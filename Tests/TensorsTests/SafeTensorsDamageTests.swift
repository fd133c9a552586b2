import Foundation
import Tensors
import XCTest

/// Each way a safetensors file can be damaged, one at a time: a thrown `SafeTensorsError` of the right
/// kind, naming the file and the problem.
final class SafeTensorsDamageTests: XCTestCase {
    typealias S = SafeTensorsTestSupport
    var dir: URL!

    override func setUpWithError() throws { dir = try S.scratchDirectory() }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    /// A header of one F32 tensor `w` with the given field texts.
    func entry(dtype: String = "\"F32\"", shape: String = "[2]", offsets: String = "[0,8]") -> String {
        "{\"w\":{\"dtype\":\(dtype),\"shape\":\(shape),\"data_offsets\":\(offsets)}}"
    }

    func rejects(_ bytes: [UInt8], _ kind: SafeTensorsError.Kind, _ phrase: String,
                 file: StaticString = #filePath, line: UInt = #line) throws {
        try S.assertRejects(bytes, kind, phrase, in: dir, file: file, line: line)
    }

    func testTheValidBaselineOpens() throws {
        // Guards every case below: each damages this file in one way only.
        let url = try S.write(S.file(header: entry(), data: S.bytes([Float(1), 2])), named: "ok.safetensors", in: dir)
        XCTAssertEqual(try SafeTensors(contentsOf: url).tensor(named: "w").array, [1, 2])
    }

    func testFilesTooShortForTheLength() throws {
        try rejects([], .truncated, "0 bytes")
        try rejects([1, 2, 3, 4, 5, 6, 7], .truncated, "7 bytes")
    }

    func testHeaderLength() throws {
        let good = S.file(header: entry(), data: S.bytes([Float(1), 2]))
        try rejects(S.littleEndian(UInt64(good.count)) + good.dropFirst(8), .headerLength, "runs past the end")
        try rejects(S.littleEndian(UInt64(good.count - 8 + 1)) + good.dropFirst(8), .headerLength, "runs past the end")
        try rejects(S.littleEndian(.max) + good.dropFirst(8), .headerLength, "absurd")
        try rejects(S.littleEndian(1 << 63) + good.dropFirst(8), .headerLength, "absurd")
        try rejects(S.littleEndian(100_000_001) + good.dropFirst(8), .headerLength, "absurd")
        try rejects(S.littleEndian(0) + good.dropFirst(8), .headerEncoding, "begin with '{'")
    }

    func testHeaderEncoding() throws {
        try rejects(S.file(header: " " + entry()), .headerEncoding, "begin with '{'")
        try rejects(S.file(header: "[1, 2]"), .headerEncoding, "begin with '{'")  // not an object
        var h = Array(entry(shape: "[0]", offsets: "[0,0]").utf8)
        h.insert(0xFF, at: 3)  // inside the tensor name
        try rejects(S.littleEndian(UInt64(h.count)) + h, .headerEncoding, "not valid UTF-8 (bad byte at header offset 3)")
        var overlong = Array(entry(shape: "[0]", offsets: "[0,0]").utf8)
        overlong.replaceSubrange(2...2, with: [0xC1, 0xB7])  // overlong encoding of "w"
        try rejects(S.littleEndian(UInt64(overlong.count)) + overlong, .headerEncoding, "not valid UTF-8")
    }

    func testInvalidJSON() throws {
        try rejects(S.file(header: "{\"w\":{\"dtype\":\"F32\","), .invalidJSON, "not valid JSON")
        try rejects(S.file(header: entry() + " trailing", data: S.bytes([Float(1), 2])), .invalidJSON, "not valid JSON")
        try rejects(S.file(header: "{\"w\":{}, \"w\":{}}"), .invalidJSON, "duplicate")
        try rejects(S.file(header: "{\"w\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}}"),
                    .invalidJSON, "duplicate")
        try rejects(S.file(header: "{\"a\\u0000b\":{}}"), .invalidJSON, "not valid JSON")
        try rejects(S.file(header: entry(offsets: "[0,99999999999999999999999]")), .invalidJSON, "not valid JSON")
        try rejects(S.file(header: String(repeating: "{\"a\":", count: 5000)), .invalidJSON, "not valid JSON")
        // Two keys that differ in bytes but are the same Swift String (canonical equivalence).
        try rejects(S.file(header: "{\"\u{E9}\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]},"
                           + "\"e\u{301}\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}}"), .invalidJSON, "same Unicode")
    }

    func testEntriesMissingFieldsOrOfWrongTypes() throws {
        let data = S.bytes([Float(1), 2])
        try rejects(S.file(header: "{\"w\":5}"), .invalidEntry, "not an object")
        try rejects(S.file(header: "{\"w\":{\"shape\":[2],\"data_offsets\":[0,8]}}", data: data), .invalidEntry, "has no \"dtype\"")
        try rejects(S.file(header: "{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", data: data), .invalidEntry, "has no \"shape\"")
        try rejects(S.file(header: "{\"w\":{\"dtype\":\"F32\",\"shape\":[2]}}", data: data), .invalidEntry, "has no \"data_offsets\"")
        try rejects(S.file(header: entry(dtype: "32"), data: data), .invalidEntry, "\"dtype\" is an integer, not a string")
        try rejects(S.file(header: entry(shape: "\"2\""), data: data), .invalidEntry, "\"shape\" is a string, not an array")
        try rejects(S.file(header: entry(shape: "[1,\"2\"]"), data: data), .invalidEntry, "\"shape\"[1] is a string, not an integer")
        try rejects(S.file(header: entry(shape: "[2,null]"), data: data), .invalidEntry, "\"shape\"[1] is null")
        try rejects(S.file(header: entry(offsets: "{\"a\":0}"), data: data), .invalidEntry, "\"data_offsets\" is an object")
        try rejects(S.file(header: entry(offsets: "[8]"), data: data), .invalidEntry, "has 1 numbers, not 2")
        try rejects(S.file(header: entry(offsets: "[0,4,8]"), data: data), .invalidEntry, "has 3 numbers, not 2")
        try rejects(S.file(header: entry(offsets: "[0,true]"), data: data), .invalidEntry, "is a boolean")
    }

    func testNegativeAndNonIntegerNumbers() throws {
        let data = S.bytes([Float(1), 2])
        try rejects(S.file(header: entry(shape: "[-2]"), data: data), .invalidEntry, "\"shape\"[0] is -2, negative")
        try rejects(S.file(header: entry(shape: "[2.5]"), data: data), .invalidEntry, "\"shape\"[0] is 2.5, not an integer")
        try rejects(S.file(header: entry(shape: "[2.0]"), data: data), .invalidEntry, "not an integer")
        try rejects(S.file(header: entry(shape: "[1e0,2]"), data: data), .invalidEntry, "not an integer")
        try rejects(S.file(header: entry(offsets: "[-8,0]"), data: data), .invalidEntry, "negative")
    }

    func testUnknownDType() throws {
        let data = S.bytes([Float(1), 2])
        try rejects(S.file(header: entry(dtype: "\"F17\""), data: data), .unknownDType, "unknown dtype \"F17\"")
        try rejects(S.file(header: entry(dtype: "\"f32\""), data: data), .unknownDType, "unknown dtype \"f32\"")
        try rejects(S.file(header: entry(dtype: "\"\""), data: data), .unknownDType, "unknown dtype")
    }

    func testOffsetsReversedOrOutsideTheData() throws {
        let data = S.bytes([Float(1), 2])
        try rejects(S.file(header: entry(offsets: "[8,0]"), data: data), .offsets, "[8, 0] are reversed")
        try rejects(S.file(header: entry(offsets: "[0,16]"), data: data), .offsets, "run past the end of the 8-byte data section")
        try rejects(S.file(header: entry(offsets: "[8,16]"), data: data), .offsets, "run past the end")
    }

    func testOverlappingTensors() throws {
        let two = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
            + "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}"
        try rejects(S.file(header: two, data: [UInt8](repeating: 0, count: 12)), .overlap, "'a' [0, 8] and 'b' [4, 12] overlap")
        let same = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
            + "\"b\":{\"dtype\":\"I32\",\"shape\":[2],\"data_offsets\":[0,8]}}"
        try rejects(S.file(header: same, data: [UInt8](repeating: 0, count: 8)), .overlap, "overlap")
        let inside = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
            + "\"b\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,4]}}"
        try rejects(S.file(header: inside, data: [UInt8](repeating: 0, count: 8)), .overlap, "overlap")
    }

    /// The format requires the data section to be entirely indexed ("cannot contain holes"), so a gap
    /// between tensors, before the first or after the last one is an error, as in the reference reader.
    func testHolesInTheData() throws {
        let gap = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
            + "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}"
        try rejects(S.file(header: gap, data: [UInt8](repeating: 0, count: 12)), .gap, "bytes [4, 8) of the data section belong to no tensor")
        try rejects(S.file(header: entry(offsets: "[4,12]"), data: [UInt8](repeating: 0, count: 12)), .gap, "bytes [0, 4)")
        try rejects(S.file(header: entry(), data: [UInt8](repeating: 0, count: 9)), .gap, "the last 1 bytes")
        try rejects(S.file(header: "{}", data: [0]), .gap, "the last 1 bytes")
    }

    func testByteCountDisagreesWithShape() throws {
        let data = S.bytes([Float(1), 2])
        try rejects(S.file(header: entry(shape: "[3]"), data: data), .byteCount, "needs 12 bytes, but data_offsets [0, 8] hold 8")
        try rejects(S.file(header: entry(shape: "[1]"), data: data), .byteCount, "needs 4 bytes")
        try rejects(S.file(header: entry(dtype: "\"F16\""), data: data), .byteCount, "needs 4 bytes")
        try rejects(S.file(header: entry(shape: "[]"), data: data), .byteCount, "needs 4 bytes")
        try rejects(S.file(header: entry(shape: "[0,5]"), data: data), .byteCount, "needs 0 bytes")
        // Products that overflow 64 bits, which a careless reader would wrap to a small number.
        try rejects(S.file(header: entry(shape: "[4611686018427387904,4]", offsets: "[0,0]")), .byteCount, "more elements than fit")
        try rejects(S.file(header: entry(shape: "[4294967296,4294967296,0]", offsets: "[0,0]")), .byteCount, "more elements than fit")
        try rejects(S.file(header: entry(dtype: "\"F64\"", shape: "[1152921504606846976]", offsets: "[0,0]")), .byteCount, "more bytes than fit")
        try rejects(S.file(header: entry(shape: "[4611686018427387904]", offsets: "[0,0]")), .byteCount, "more bytes than fit")
        try rejects(S.file(header: entry(dtype: "\"F4\"", shape: "[3]", offsets: "[0,2]"), data: [0, 0]), .byteCount, "do not fill whole bytes")
    }

    func testMetadataMustMapStringsToStrings() throws {
        try rejects(S.file(header: "{\"__metadata__\":\"pt\"}"), .metadata, "__metadata__ is a string, not an object")
        try rejects(S.file(header: "{\"__metadata__\":null}"), .metadata, "__metadata__ is null")
        try rejects(S.file(header: "{\"__metadata__\":{\"format\":\"pt\",\"epoch\":3}}"), .metadata, "__metadata__[\"epoch\"] is an integer")
        try rejects(S.file(header: "{\"__metadata__\":{\"nested\":{}}}"), .metadata, "is an object, not a string")
    }

    func testFilesThatAreNotRegularFiles() throws {
        XCTAssertThrowsError(try SafeTensors(contentsOf: dir.appendingPathComponent("absent.safetensors"))) { e in
            XCTAssertEqual((e as? SafeTensorsError)?.kind, .io)
            XCTAssertTrue("\(e)".contains("absent.safetensors") && "\(e)".contains("No such file"), "\(e)")
        }
        XCTAssertThrowsError(try SafeTensors(contentsOf: dir)) { e in
            XCTAssertEqual((e as? SafeTensorsError)?.kind, .io)
            XCTAssertTrue("\(e)".contains("not a regular file"), "\(e)")
        }
    }

    func testEdgeCasesTheFormatAllows() throws {
        // Empty header object and no data; zero-size tensors anywhere at the boundaries; scalars;
        // any JSON whitespace after the object; extra keys inside an entry (ignored, as the reference does).
        for header in ["{}", "{ }\n\t", "{\"e\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}}"] {
            let url = try S.write(S.file(header: header), named: "edge-\(UUID()).safetensors", in: dir)
            XCTAssertNoThrow(try SafeTensors(contentsOf: url), header)
        }
        let header = "{\"z\":{\"dtype\":\"BF16\",\"shape\":[3,0],\"data_offsets\":[4,4]},"
            + "\"s\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4],\"note\":[1,{}]}}"
        let url = try S.write(S.file(header: header, data: S.bytes([Float(7)])), named: "edge.safetensors", in: dir)
        let st = try SafeTensors(contentsOf: url)
        XCTAssertEqual(try st.tensor(named: "s").array, [7])
        XCTAssertEqual(try st.tensor(named: "z").shape, [3, 0])
        XCTAssertEqual(try st.tensor(named: "z").count, 0)
    }
}
