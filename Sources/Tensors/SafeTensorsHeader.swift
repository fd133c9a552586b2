import CJansson

/// Parsing and validation of a safetensors header (the JSON after the 8-byte length), with jansson.
///
/// The rules are those of the format (huggingface/safetensors README, "Format"): the header begins with
/// `{`, is UTF-8 JSON without duplicate keys, maps each tensor name to `dtype`, `shape` and
/// `data_offsets` (relative to the data section, end exclusive), and may hold a string-to-string
/// `__metadata__`. The data section must be entirely indexed: tensors may neither overlap nor leave
/// holes, and the last one ends where the file ends. Extra keys inside a tensor entry are ignored, as
/// the reference reader does.
enum SafeTensorsHeader {
    /// The largest header accepted, the reference implementation's limit.
    static let maxLength = 100_000_000

    struct Parsed {
        var entries: [SafeTensors.Entry]
        var metadata: [String: String]
    }

    typealias Fail = (SafeTensorsError.Kind, String) -> SafeTensorsError

    /// Parses `header` and checks every entry against a data section of `dataLength` bytes.
    static func parse(_ header: UnsafeRawBufferPointer, dataLength: Int, fail: Fail) throws -> Parsed {
        guard header.count > 0, header[0] == UInt8(ascii: "{") else {
            throw fail(.headerEncoding, "header does not begin with '{'")
        }
        if let bad = firstInvalidUTF8(header) {
            throw fail(.headerEncoding, "header is not valid UTF-8 (bad byte at header offset \(bad))")
        }
        var err = json_error_t()
        let chars = header.baseAddress!.assumingMemoryBound(to: CChar.self)
        guard let root = json_loadb(chars, header.count, Int(JSON_REJECT_DUPLICATES), &err) else {
            let text = withUnsafeBytes(of: &err.text) { String(cString: $0.baseAddress!.assumingMemoryBound(to: CChar.self)) }
            throw fail(.invalidJSON, "header is not valid JSON: \(text) (line \(err.line), column \(err.column))")
        }
        defer { json_decref(root) }
        guard root.pointee.type == JSON_OBJECT else { throw fail(.invalidJSON, "header is not a JSON object") }

        var parsed = Parsed(entries: [], metadata: [:])
        var iter = json_object_iter(root)
        while let it = iter {
            let key = String(decoding: UnsafeRawBufferPointer(start: json_object_iter_key(it),
                                                              count: json_object_iter_key_len(it)), as: UTF8.self)
            let value = json_object_iter_value(it)!
            if key == "__metadata__" {
                parsed.metadata = try metadata(value, fail: fail)
            } else {
                parsed.entries.append(try entry(key, value, dataLength: dataLength, fail: fail))
            }
            iter = json_object_iter_next(root, it)
        }
        try checkCoverage(parsed.entries, dataLength: dataLength, fail: fail)
        return parsed
    }

    private static func metadata(_ value: UnsafeMutablePointer<json_t>, fail: Fail) throws -> [String: String] {
        guard value.pointee.type == JSON_OBJECT else {
            throw fail(.metadata, "__metadata__ is \(typeName(value)), not an object of strings")
        }
        var result: [String: String] = [:]
        var iter = json_object_iter(value)
        while let it = iter {
            let key = String(decoding: UnsafeRawBufferPointer(start: json_object_iter_key(it),
                                                              count: json_object_iter_key_len(it)), as: UTF8.self)
            let v = json_object_iter_value(it)!
            guard v.pointee.type == JSON_STRING else {
                throw fail(.metadata, "__metadata__[\"\(key)\"] is \(typeName(v)), not a string")
            }
            if result[key] != nil {
                throw fail(.metadata, "__metadata__ has two keys that Swift considers equal: \"\(key)\"")
            }
            result[key] = string(v)
            iter = json_object_iter_next(value, it)
        }
        return result
    }

    private static func entry(_ name: String, _ value: UnsafeMutablePointer<json_t>, dataLength: Int,
                              fail: Fail) throws -> SafeTensors.Entry {
        let what = "tensor '\(name)'"
        guard value.pointee.type == JSON_OBJECT else {
            throw fail(.invalidEntry, "\(what): entry is \(typeName(value)), not an object")
        }
        func field(_ key: String) throws -> UnsafeMutablePointer<json_t> {
            guard let v = json_object_get(value, key) else { throw fail(.invalidEntry, "\(what) has no \"\(key)\"") }
            return v
        }
        let dtypeValue = try field("dtype")
        guard dtypeValue.pointee.type == JSON_STRING else {
            throw fail(.invalidEntry, "\(what): \"dtype\" is \(typeName(dtypeValue)), not a string")
        }
        let dtypeName = string(dtypeValue)
        guard let dtype = SafeTensorsDType(rawValue: dtypeName) else {
            throw fail(.unknownDType, "\(what) has unknown dtype \"\(dtypeName)\"")
        }
        let shape = try naturals(try field("shape"), "\(what): \"shape\"", fail: fail)
        let offsets = try naturals(try field("data_offsets"), "\(what): \"data_offsets\"", fail: fail)
        guard offsets.count == 2 else {
            throw fail(.invalidEntry, "\(what): \"data_offsets\" has \(offsets.count) numbers, not 2")
        }
        let (begin, end) = (offsets[0], offsets[1])
        if begin > end { throw fail(.offsets, "\(what): data_offsets [\(begin), \(end)] are reversed") }
        if end > dataLength {
            throw fail(.offsets, "\(what): data_offsets [\(begin), \(end)] run past the end of the \(dataLength)-byte data section")
        }
        var count = 1
        for d in shape {
            let (p, o) = count.multipliedReportingOverflow(by: d)
            if o { throw fail(.byteCount, "\(what): shape \(shape) has more elements than fit in 64 bits") }
            count = p
        }
        let (bits, o) = count.multipliedReportingOverflow(by: dtype.bitSize)
        if o { throw fail(.byteCount, "\(what): shape \(shape) of \(dtype.rawValue) has more bytes than fit in 64 bits") }
        if bits % 8 != 0 {
            throw fail(.byteCount, "\(what): \(count) elements of \(dtype.rawValue) do not fill whole bytes")
        }
        if bits / 8 != end - begin {
            throw fail(.byteCount, "\(what) of dtype \(dtype.rawValue) and shape \(shape) needs \(bits / 8) bytes, but data_offsets [\(begin), \(end)] hold \(end - begin)")
        }
        return SafeTensors.Entry(name: name, dtype: dtype, shape: shape, count: count, byteRange: begin..<end)
    }

    /// A JSON array of non-negative integers.
    private static func naturals(_ value: UnsafeMutablePointer<json_t>, _ what: String, fail: Fail) throws -> [Int] {
        guard value.pointee.type == JSON_ARRAY else {
            throw fail(.invalidEntry, "\(what) is \(typeName(value)), not an array")
        }
        let n = json_array_size(value)
        var result: [Int] = []
        result.reserveCapacity(n)
        for i in 0..<n {
            let e = json_array_get(value, i)!
            guard e.pointee.type == JSON_INTEGER else {
                let shown = e.pointee.type == JSON_REAL ? "\(json_real_value(e))" : typeName(e)
                throw fail(.invalidEntry, "\(what)[\(i)] is \(shown), not an integer")
            }
            let v = json_integer_value(e)
            if v < 0 { throw fail(.invalidEntry, "\(what)[\(i)] is \(v), negative") }
            result.append(Int(v))
        }
        return result
    }

    /// Tensors sorted by offset must tile the data section exactly: no overlap, no hole, nothing after.
    private static func checkCoverage(_ entries: [SafeTensors.Entry], dataLength: Int, fail: Fail) throws {
        let sorted = entries.sorted {
            ($0.byteRange.lowerBound, $0.byteRange.upperBound) < ($1.byteRange.lowerBound, $1.byteRange.upperBound)
        }
        var covered = 0
        var previous: SafeTensors.Entry? = nil
        for e in sorted {
            let r = e.byteRange
            if r.lowerBound < covered, let p = previous {
                throw fail(.overlap, "tensors '\(p.name)' [\(p.byteRange.lowerBound), \(p.byteRange.upperBound)] and '\(e.name)' [\(r.lowerBound), \(r.upperBound)] overlap")
            }
            if r.lowerBound > covered {
                throw fail(.gap, "bytes [\(covered), \(r.lowerBound)) of the data section belong to no tensor (the format forbids holes)")
            }
            covered = r.upperBound
            previous = e
        }
        if covered != dataLength {
            throw fail(.gap, "the last \(dataLength - covered) bytes of the \(dataLength)-byte data section belong to no tensor (the format forbids holes)")
        }
    }

    private static func string(_ v: UnsafeMutablePointer<json_t>) -> String {
        String(decoding: UnsafeRawBufferPointer(start: json_string_value(v), count: json_string_length(v)), as: UTF8.self)
    }

    private static func typeName(_ v: UnsafeMutablePointer<json_t>) -> String {
        switch v.pointee.type {
        case JSON_OBJECT: return "an object"
        case JSON_ARRAY: return "an array"
        case JSON_STRING: return "a string"
        case JSON_INTEGER: return "an integer"
        case JSON_REAL: return "a real number"
        case JSON_TRUE, JSON_FALSE: return "a boolean"
        default: return "null"
        }
    }

    /// Offset of the first byte that breaks UTF-8, or nil when all of `bytes` is valid UTF-8.
    static func firstInvalidUTF8(_ bytes: UnsafeRawBufferPointer) -> Int? {
        var parser = Unicode.UTF8.ForwardParser()
        var it = bytes.makeIterator()
        var offset = 0
        while true {
            switch parser.parseScalar(from: &it) {
            case .valid(let encoded): offset += encoded.count
            case .emptyInput: return nil
            case .error: return offset
            }
        }
    }
}
