#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Tensors
import XCTest

/// Mutates valid safetensors files at random (fixed seed, project RNG): bit flips, byte overwrites,
/// truncations, appended garbage, edits of the header length, of numbers, dtypes and keys in the
/// header, and broken JSON. Every case must be a `SafeTensorsError` naming the file, or a file whose
/// tensors are consistent with its header and whose values are exactly the bytes the header points at.
final class SafeTensorsFuzzTests: XCTestCase {
    typealias S = SafeTensorsTestSupport
    static let cases = 12_000

    enum Mutation: String, CaseIterable {
        case bitFlips, byteOverwrites, dataOnlyFlips, truncation, appendedGarbage, headerLength,
             headerNumber, headerDType, headerStructure, brokenJSON, several
    }

    func testMutatedFilesNeverCrashOrLie() throws {
        let dir = try S.scratchDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let bases = try baseFiles(in: dir)
        var rng = RNG(seed: 0x5AFE_7E45)
        var outcomes: [String: Int] = [:]
        var opened = 0, rejected = 0, tensorsRead = 0
        let start = Date()
        for i in 0..<Self.cases {
            let base = bases[rng.int(below: bases.count)]
            let mutation = Mutation.allCases[rng.int(below: Mutation.allCases.count)]
            let bytes = mutate(base, mutation, &rng)
            if bytes == base { continue }  // a no-op edit; counted out below
            // Plain POSIX: a fresh name per case (ext4 makes rewriting one file slow), removed after.
            let url = dir.appendingPathComponent("case-\(i).safetensors")
            let fd = open(url.path, O_WRONLY | O_CREAT | O_EXCL, 0o600)
            XCTAssertGreaterThanOrEqual(fd, 0)
            XCTAssertEqual(bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }, bytes.count)
            close(fd)
            defer { unlink(url.path) }
            do {
                let st = try SafeTensors(contentsOf: url)
                tensorsRead += try verify(st, bytes, case: i)
                opened += 1
                outcomes["\(mutation.rawValue): opened", default: 0] += 1
                if mutation == .truncation || mutation == .appendedGarbage {
                    XCTFail("case \(i): \(mutation) left the data section uncovered, yet the file opened")
                }
            } catch let e as SafeTensorsError {
                rejected += 1
                outcomes["\(mutation.rawValue): \(e.kind.rawValue)", default: 0] += 1
                XCTAssertEqual(e.path, url.path)
                XCTAssertTrue(e.description.contains(url.path))
                if mutation == .dataOnlyFlips { XCTFail("case \(i): flipping data bits only must still open: \(e)") }
            }
        }
        let seconds = Date().timeIntervalSince(start)
        for (k, v) in outcomes.sorted(by: { $0.key < $1.key }) { print("  \(k): \(v)") }
        print("safetensors fuzz: \(opened + rejected) cases in \(String(format: "%.2f", seconds)) s: "
              + "\(opened) opened (\(tensorsRead) tensors read and checked), \(rejected) rejected")
        XCTAssertGreaterThanOrEqual(opened + rejected, 10_000, "fewer than 10,000 effective cases")
        XCTAssertGreaterThan(opened, 1000, "the fuzzer should also produce many readable files")
        XCTAssertGreaterThan(Set(outcomes.keys.filter { !$0.hasSuffix("opened") }.map { $0.split(separator: " ").last! }).count, 8,
                             "errors of many kinds expected")
    }

    /// Checks an opened file against its own bytes, independently of the reader; returns tensors read.
    func verify(_ st: SafeTensors, _ bytes: [UInt8], case i: Int) throws -> Int {
        XCTAssertEqual(st.names.count, st.entries.count)
        XCTAssertEqual(st.names, st.names.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) })
        let dataLength = bytes.count - st.dataOffset
        XCTAssertGreaterThanOrEqual(dataLength, 0)
        let entries = st.entries.values.sorted { ($0.byteRange.lowerBound, $0.byteRange.upperBound) < ($1.byteRange.lowerBound, $1.byteRange.upperBound) }
        var covered = 0
        for e in entries {
            XCTAssertEqual(e.byteRange.lowerBound, covered, "case \(i): not tiled")
            covered = e.byteRange.upperBound
            let count = e.shape.reduce(1) { $0.multipliedReportingOverflow(by: $1).partialValue }
            XCTAssertEqual(e.count, count, "case \(i)")
            XCTAssertEqual(e.byteRange.count * 8, count * e.dtype.bitSize, "case \(i)")
        }
        XCTAssertEqual(covered, dataLength, "case \(i)")
        var read = 0
        for name in st.names {
            let e = st.entries[name]!
            guard e.dtype.convertsToFloat32 else {
                XCTAssertThrowsError(try st.tensor(named: name))
                continue
            }
            let t = try st.tensor(named: name)
            XCTAssertEqual(t.shape, e.shape, "case \(i)")
            XCTAssertEqual(t.count, e.count, "case \(i)")
            let at = st.dataOffset + e.byteRange.lowerBound
            for k in 0..<t.count {
                let want: UInt32
                switch e.dtype {
                case .F32: want = (0..<4).reduce(0) { $0 | UInt32(bytes[at + 4 * k + $1]) << (8 * $1) }
                case .F16: want = S.referenceF16(UInt16(bytes[at + 2 * k]) | UInt16(bytes[at + 2 * k + 1]) << 8)
                default: want = S.referenceBF16(UInt16(bytes[at + 2 * k]) | UInt16(bytes[at + 2 * k + 1]) << 8)
                }
                if !S.sameValue(t[k].bitPattern, want) {
                    XCTFail("case \(i): \(name)[\(k)] is \(t[k]), the file says \(Float(bitPattern: want))")
                    break
                }
            }
            read += 1
        }
        return read
    }

    // MARK: Inputs

    /// Valid files: the reference package's fixture, our writer's output, and hand-made mixed dtypes.
    func baseFiles(in dir: URL) throws -> [[UInt8]] {
        var rng = RNG(seed: 99)
        var files = [[UInt8](try Data(contentsOf: S.fixtures.appendingPathComponent("safetensors-reference.safetensors")))]
        for k in 0..<3 {
            let url = dir.appendingPathComponent("base-\(k).safetensors")
            try SafeTensors.write(["layer.\(k).weight": Tensor.randn([3 + k, 4], rng: &rng), "bias": Tensor.randn([4], rng: &rng),
                                   "scalar": Tensor(shape: [], values: [Float(k)]), "none": Tensor(zeros: [k, 0])],
                                  metadata: k == 1 ? [:] : ["format": "pt", "step": "\(k)"], to: url)
            files.append([UInt8](try Data(contentsOf: url)))
        }
        let mixed = "{\"__metadata__\":{\"a\":\"b\"},\"u\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[0,3]},"
            + "\"h\":{\"dtype\":\"F16\",\"shape\":[2,5],\"data_offsets\":[3,23]},"
            + "\"f\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[23,35]},"
            + "\"i\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[35,43]},"
            + "\"b\":{\"dtype\":\"BF16\",\"shape\":[9],\"data_offsets\":[43,61]}}"
        files.append(S.file(header: mixed, data: (0..<61).map { _ in UInt8(truncatingIfNeeded: rng.next()) }))
        for f in files {  // the bases themselves must be clean reads
            let url = try S.write(f, named: "base-check.safetensors", in: dir)
            XCTAssertGreaterThan(try verify(try SafeTensors(contentsOf: url), f, case: -1), 0)
        }
        return files
    }

    func mutate(_ base: [UInt8], _ mutation: Mutation, _ rng: inout RNG) -> [UInt8] {
        var b = base
        guard b.count >= 8 else { return b + [UInt8(rng.int(below: 256))] }
        let n64 = b[0..<8].enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        let sane = n64 <= UInt64(b.count - 8)  // earlier mutations (in `several`) may have broken the length
        let n = sane ? Int(n64) : 0
        let dataStart = 8 + n
        let needsHeader: Set<Mutation> = [.dataOnlyFlips, .headerLength, .headerNumber, .headerDType, .headerStructure, .brokenJSON]
        if !sane && needsHeader.contains(mutation) { return mutate(base, .bitFlips, &rng) }
        switch mutation {
        case .bitFlips:
            for _ in 0..<(1 + rng.int(below: 8)) { b[rng.int(below: b.count)] ^= 1 << UInt8(rng.int(below: 8)) }
        case .byteOverwrites:
            let specials: [UInt8] = [0, 0xFF, 0x7F, 0x80, UInt8(ascii: "{"), UInt8(ascii: "\""), UInt8(ascii: "9"), UInt8(ascii: "-")]
            for _ in 0..<(1 + rng.int(below: 8)) {
                b[rng.int(below: b.count)] = rng.int(below: 2) == 0 ? specials[rng.int(below: specials.count)] : UInt8(rng.int(below: 256))
            }
        case .dataOnlyFlips:
            guard b.count > dataStart else { return mutate(base, .bitFlips, &rng) }
            for _ in 0..<(1 + rng.int(below: 8)) {
                b[dataStart + rng.int(below: b.count - dataStart)] ^= 1 << UInt8(rng.int(below: 8))
            }
        case .truncation:
            b.removeLast(1 + rng.int(below: b.count))
        case .appendedGarbage:
            b += (0..<(1 + rng.int(below: 64))).map { _ in UInt8(rng.int(below: 256)) }
        case .headerLength:
            let choices: [UInt64] = [0, 1, 7, UInt64(max(n - 1, 0)), UInt64(n + 1), UInt64(max(n - 8, 0)), UInt64(n + 8), UInt64(b.count),
                                     UInt64(b.count - 8), UInt64(rng.int(below: 1 << 20)), 100_000_001, .max, 1 << 63]
            b.replaceSubrange(0..<8, with: S.littleEndian(choices[rng.int(below: choices.count)]))
        case .headerNumber, .headerDType, .headerStructure, .brokenJSON:
            var header = String(decoding: b[8..<dataStart], as: UTF8.self)
            editHeader(&header, mutation, &rng)
            b = S.littleEndian(UInt64(header.utf8.count)) + Array(header.utf8) + b[dataStart...]
        case .several:
            for _ in 0..<(2 + rng.int(below: 2)) {
                let m = [Mutation.bitFlips, .byteOverwrites, .truncation, .headerNumber, .headerDType, .brokenJSON][rng.int(below: 6)]
                let next = mutate(b, m, &rng)
                if next.count < 8 { return next }
                b = next
            }
        }
        return b
    }

    func editHeader(_ h: inout String, _ mutation: Mutation, _ rng: inout RNG) {
        var chars = Array(h.unicodeScalars)
        func replace(_ range: Range<Int>, _ text: String) { chars.replaceSubrange(range, with: Array(text.unicodeScalars)) }
        /// Ranges of runs of scalars satisfying `p`.
        func runs(_ p: (Unicode.Scalar) -> Bool) -> [Range<Int>] {
            var result: [Range<Int>] = [], i = 0
            while i < chars.count {
                if p(chars[i]) { var j = i; while j < chars.count && p(chars[j]) { j += 1 }; result.append(i..<j); i = j } else { i += 1 }
            }
            return result
        }
        switch mutation {
        case .headerNumber:
            let numbers = runs { ("0"..."9").contains($0) }
            guard let r = numbers.isEmpty ? nil : numbers[rng.int(below: numbers.count)] else { break }
            let v = Int(String(String.UnicodeScalarView(chars[r]))) ?? 0
            let choices = ["0", "1", "\(v + 1)", "\(max(v - 1, 0))", "\(v * 2)", "\(v + 4)", "\(rng.int(below: 1_000_000))",
                           "-1", "-\(v)", "1.5", "\(v).0", "1e3", "", "4611686018427387904", "9223372036854775807",
                           "9223372036854775808", "18446744073709551616"]
            replace(r, choices[rng.int(below: choices.count)])
        case .headerDType:
            let names = SafeTensorsDType.allCases.map(\.rawValue) + ["F17", "f32", "", "FLOAT", "F32 ", "\\u0046\\u00332"]
            let quoted = SafeTensorsDType.allCases.map { "\"\($0.rawValue)\"" }
            let text = String(String.UnicodeScalarView(chars))
            let hits = quoted.flatMap { q in text.ranges(of: q).map { (q, $0) } }
            guard let (_, range) = hits.isEmpty ? nil : hits[rng.int(below: hits.count)] else { break }
            let lower = text.unicodeScalars.distance(from: text.startIndex, to: range.lowerBound)
            let upper = text.unicodeScalars.distance(from: text.startIndex, to: range.upperBound)
            replace(lower..<upper, "\"\(names[rng.int(below: names.count)])\"")
        case .headerStructure:
            let text = String(String.UnicodeScalarView(chars))
            let keys = ["\"dtype\"", "\"shape\"", "\"data_offsets\"", "\"__metadata__\"", "\"format\""]
            let key = keys[rng.int(below: keys.count)]
            let hits = text.ranges(of: key)
            guard !hits.isEmpty else { break }
            let at = text.unicodeScalars.distance(from: text.startIndex, to: hits[rng.int(below: hits.count)].lowerBound)
            let replacements = ["\"x\"", "\"shape\"", "\"dtype\"", "\"data_offsets\"", "\"__metadata__\""]
            switch rng.int(below: 4) {
            case 0: replace(at..<(at + key.unicodeScalars.count), replacements[rng.int(below: replacements.count)])  // rename key
            case 1:  // swap the value for one of another type
                let colon = at + key.unicodeScalars.count
                let values = ["5", "\"3\"", "null", "[]", "[1]", "[0,0,0]", "{}", "true", "[-1]", "[0.5]"]
                if let end = valueEnd(chars, from: colon + 1) { replace((colon + 1)..<end, values[rng.int(below: values.count)]) }
            case 2:  // delete the key and its value
                if let end = valueEnd(chars, from: at + key.unicodeScalars.count + 1) {
                    let comma = end < chars.count && chars[end] == "," ? end + 1 : end
                    replace(at..<comma, "")
                }
            default:  // duplicate the key with its value
                if let end = valueEnd(chars, from: at + key.unicodeScalars.count + 1) {
                    let pair = String(String.UnicodeScalarView(chars[at..<end]))
                    replace(at..<at, pair + ",")
                }
            }
        case .brokenJSON:
            let junk: [Unicode.Scalar] = ["{", "}", "[", "]", "\"", ",", ":", "0", "-", "\\", " ", "a", "\u{0}", "\u{FFFD}"]
            let i = rng.int(below: chars.count)
            switch rng.int(below: 3) {
            case 0: chars.remove(at: i)
            case 1: chars.insert(junk[rng.int(below: junk.count)], at: i)
            default: chars.removeLast(chars.count - i)
            }
        default: break
        }
        h = String(String.UnicodeScalarView(chars))
    }

    /// Index just past the JSON value starting at `start` (a scalar, string, array or object).
    func valueEnd(_ c: [Unicode.Scalar], from start: Int) -> Int? {
        var i = start, depth = 0, inString = false
        while i < c.count {
            let ch = c[i]
            if inString {
                if ch == "\\" { i += 1 } else if ch == "\"" { inString = false; if depth == 0 { return i + 1 } }
            } else if ch == "\"" { inString = true
            } else if ch == "[" || ch == "{" { depth += 1
            } else if ch == "]" || ch == "}" {
                if depth == 0 { return i }
                depth -= 1
                if depth == 0 { return i + 1 }
            } else if depth == 0 && ch == "," { return i }
            i += 1
        }
        return nil
    }
}
