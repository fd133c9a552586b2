import CJansson

/// A JSON value as the server sees it: parsed from and printed to bytes by jansson, handled in Swift
/// as plain data so that no `json_t` pointer ever leaves this file.
public enum JSON: Equatable, Sendable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([JSON])
    case object([String: JSON])

    /// Why some bytes are not one JSON value.
    public struct ParseError: Error, CustomStringConvertible, Sendable {
        public let message: String
        public let line: Int
        public let column: Int
        public var description: String { "\(message) (line \(line), column \(column))" }
    }

    /// Parses exactly one JSON value (any type, NUL characters allowed in strings, duplicate keys
    /// rejected). jansson bounds the nesting depth, so hostile input cannot exhaust the stack.
    public static func parse<C: Collection>(_ bytes: C) throws -> JSON where C.Element == UInt8 {
        var error = json_error_t()
        let flags = Int(JSON_DECODE_ANY | JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES)
        let root: UnsafeMutablePointer<json_t>? = bytes.withContiguousStorageIfAvailable { buf in
            buf.withMemoryRebound(to: CChar.self) { json_loadb($0.baseAddress, $0.count, flags, &error) }
        } ?? Array(bytes).withUnsafeBufferPointer { buf in
            buf.withMemoryRebound(to: CChar.self) { json_loadb($0.baseAddress, $0.count, flags, &error) }
        }
        guard let root else {
            let text = withUnsafeBytes(of: error.text) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            throw ParseError(message: text, line: Int(error.line), column: Int(error.column))
        }
        defer { json_decref(root) }
        return JSON(jansson: root)
    }

    /// Parses a Swift string (a convenience for tests and for building replies).
    public static func parse(_ text: String) throws -> JSON { try parse(Array(text.utf8)) }

    private init(jansson p: UnsafeMutablePointer<json_t>) {
        switch p.pointee.type {
        case JSON_NULL: self = .null
        case JSON_TRUE: self = .bool(true)
        case JSON_FALSE: self = .bool(false)
        case JSON_INTEGER: self = .int(Int64(json_integer_value(p)))
        case JSON_REAL: self = .double(json_real_value(p))
        case JSON_STRING:
            let n = json_string_length(p)
            let s = json_string_value(p)!.withMemoryRebound(to: UInt8.self, capacity: n) {
                String(decoding: UnsafeBufferPointer(start: $0, count: n), as: UTF8.self)
            }
            self = .string(s)
        case JSON_ARRAY:
            let n = json_array_size(p)
            var items: [JSON] = []
            items.reserveCapacity(n)
            for i in 0..<n { items.append(JSON(jansson: json_array_get(p, i)!)) }
            self = .array(items)
        case JSON_OBJECT:
            var dict: [String: JSON] = [:]
            dict.reserveCapacity(json_object_size(p))
            var iter = json_object_iter(p)
            while let it = iter {
                let n = json_object_iter_key_len(it)
                let key = json_object_iter_key(it)!.withMemoryRebound(to: UInt8.self, capacity: n) {
                    String(decoding: UnsafeBufferPointer(start: $0, count: n), as: UTF8.self)
                }
                dict[key] = JSON(jansson: json_object_iter_value(it)!)
                iter = json_object_iter_next(p, it)
            }
            self = .object(dict)
        default: self = .null
        }
    }

    /// Builds a new jansson value (reference owned by the caller).
    private func makeJansson() -> UnsafeMutablePointer<json_t> {
        switch self {
        case .null: return json_null()
        case .bool(let b): return b ? json_true() : json_false()
        case .int(let i): return json_integer(json_int_t(i))
        case .double(let d): return json_real(d) ?? json_null()   // NaN and infinities print as null
        case .string(let s):
            if s.isEmpty { return json_string("") }
            var s = s
            return s.withUTF8 { buf in
                buf.withMemoryRebound(to: CChar.self) { json_stringn($0.baseAddress!, $0.count) }
            } ?? json_null()
        case .array(let items):
            let a = json_array()!
            for item in items { json_array_append_new(a, item.makeJansson()) }
            return a
        case .object(let dict):
            let o = json_object()!
            for (key, value) in dict {
                if key.isEmpty {
                    _ = json_object_set_new(o, "", value.makeJansson())
                    continue
                }
                var key = key
                key.withUTF8 { buf in
                    buf.withMemoryRebound(to: CChar.self) {
                        _ = json_object_setn_new(o, $0.baseAddress!, $0.count, value.makeJansson())
                    }
                }
            }
            return o
        }
    }

    /// Compact UTF-8 text with sorted keys: never contains a raw newline, so it also fits
    /// newline-delimited framing.
    public func serialized() -> [UInt8] {
        let root = makeJansson()
        defer { json_decref(root) }
        let flags = Int(JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS)
        let size = json_dumpb(root, nil, 0, flags)
        guard size > 0 else { return Array("null".utf8) }
        var out = [UInt8](repeating: 0, count: size)
        out.withUnsafeMutableBufferPointer { buf in
            buf.withMemoryRebound(to: CChar.self) { _ = json_dumpb(root, $0.baseAddress, size, flags) }
        }
        return out
    }

    /// The serialized text as a String (tests, logs).
    public var text: String { String(decoding: serialized(), as: UTF8.self) }
}

// MARK: - Convenient access

extension JSON {
    public subscript(key: String) -> JSON? {
        if case .object(let d) = self { return d[key] }
        return nil
    }

    public var stringValue: String? { if case .string(let s) = self { return s }; return nil }
    public var boolValue: Bool? { if case .bool(let b) = self { return b }; return nil }
    public var intValue: Int64? { if case .int(let i) = self { return i }; return nil }
    public var arrayValue: [JSON]? { if case .array(let a) = self { return a }; return nil }
    public var objectValue: [String: JSON]? { if case .object(let o) = self { return o }; return nil }
    /// Integers and reals alike, as Double.
    public var numberValue: Double? {
        switch self {
        case .int(let i): return Double(i)
        case .double(let d): return d
        default: return nil
        }
    }

    /// The JSON type name used in error messages ("a string", "an object", ...).
    public var kindDescription: String {
        switch self {
        case .null: return "null"
        case .bool: return "a boolean"
        case .int: return "an integer"
        case .double: return "a number"
        case .string: return "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }
}

extension JSON: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByFloatLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByNilLiteral
{
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int64) { self = .int(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
    public init(arrayLiteral elements: JSON...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JSON)...) {
        self = .object(Dictionary(elements, uniquingKeysWith: { _, b in b }))
    }
    public init(nilLiteral: ()) { self = .null }
}
