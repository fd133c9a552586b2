import Foundation
import Tensors
import XCTest

/// Helpers shared by the safetensors tests: scratch directories, hand-built files, reference decoders.
enum SafeTensorsTestSupport {
    /// The committed fixtures of this test target.
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

    /// A new empty directory under the system temporary directory.
    static func scratchDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("erudiff-safetensors-\(getpid())-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// The bytes of a safetensors file with the given header text and data section. The header is
    /// padded with spaces to an 8-byte boundary when `pad` is set; `lengthField` overrides the length.
    static func file(header: String, data: [UInt8] = [], lengthField: UInt64? = nil, pad: Bool = true) -> [UInt8] {
        var h = Array(header.utf8)
        if pad { while (8 + h.count) % 8 != 0 { h.append(0x20) } }
        return littleEndian(lengthField ?? UInt64(h.count)) + h + data
    }

    static func littleEndian(_ n: UInt64) -> [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: n >> (8 * $0)) } }

    /// Little-endian bytes of float32 values.
    static func bytes(_ values: [Float]) -> [UInt8] {
        values.flatMap { v in (0..<4).map { UInt8(truncatingIfNeeded: v.bitPattern >> (8 * $0)) } }
    }

    /// Little-endian bytes of 16-bit patterns.
    static func bytes(_ values: [UInt16]) -> [UInt8] {
        values.flatMap { [UInt8(truncatingIfNeeded: $0), UInt8(truncatingIfNeeded: $0 >> 8)] }
    }

    /// Writes `bytes` to a new file `name` in `directory`.
    @discardableResult
    static func write(_ bytes: [UInt8], named name: String, in directory: URL) throws -> URL {
        let url = directory.appendingPathComponent(name)
        try Data(bytes).write(to: url)
        return url
    }

    /// Float32 bit pattern of a half, computed by the Swift runtime's own conversion (not ours).
    static func referenceF16(_ h: UInt16) -> UInt32 { Float(Float16(bitPattern: h)).bitPattern }

    /// Float32 bit pattern of a bfloat16: its bits are the top half of the float32.
    static func referenceBF16(_ h: UInt16) -> UInt32 { UInt32(h) << 16 }

    /// Whether two float32 bit patterns agree, counting any two NaNs as equal.
    static func sameValue(_ a: UInt32, _ b: UInt32) -> Bool {
        a == b || (Float(bitPattern: a).isNaN && Float(bitPattern: b).isNaN)
    }

    /// Asserts that opening `bytes` (written to a file) throws a `SafeTensorsError` of `kind` whose
    /// message names the file and contains `phrase`.
    static func assertRejects(_ bytes: [UInt8], _ kind: SafeTensorsError.Kind, _ phrase: String, in directory: URL,
                              file: StaticString = #filePath, line: UInt = #line) throws {
        let url = try write(bytes, named: "damaged-\(UUID().uuidString).safetensors", in: directory)
        do {
            let st = try SafeTensors(contentsOf: url)
            XCTFail("opened a damaged file (expected \(kind)): \(st.names)", file: file, line: line)
        } catch let e as SafeTensorsError {
            XCTAssertEqual(e.kind, kind, "\(e)", file: file, line: line)
            XCTAssertEqual(e.path, url.path, file: file, line: line)
            XCTAssertTrue(e.description.contains(url.path), "\(e)", file: file, line: line)
            XCTAssertTrue(e.problem.contains(phrase), "'\(e.problem)' lacks '\(phrase)'", file: file, line: line)
        }
    }
}
