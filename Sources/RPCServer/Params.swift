/// Named parameters of one request, read with typed accessors whose failures are `-32602 Invalid params`
/// errors naming the parameter and what was expected. `finish()` rejects names nobody asked for, so a
/// misspelt option is reported instead of silently ignored.
public final class Params {
    public let method: String
    public let values: [String: JSON]
    /// Prepended to parameter names in messages ("anchors." for the members of `anchors`).
    public let prefix: String
    private var used: Set<String> = ["workDoneToken"]

    /// Members every method accepts and the dispatcher handles itself.
    public static let common: Set<String> = ["workDoneToken"]

    public init(method: String, _ params: JSON?, prefix: String = "") throws {
        self.method = method
        self.prefix = prefix
        switch params {
        case nil: values = [:]
        case .object(let o): values = o
        case .array(let a) where a.isEmpty: values = [:]
        case .array:
            throw RPCError.invalidParams("\(method) takes named parameters (an object), not positional ones (an array)")
        default:
            throw RPCError.invalidParams("params must be an object")
        }
    }

    public func has(_ name: String) -> Bool { values[name] != nil && values[name] != .null }

    /// The raw value, marked as used; null counts as absent.
    public func raw(_ name: String) -> JSON? {
        used.insert(name)
        guard let v = values[name], v != .null else { return nil }
        return v
    }

    private func fail(_ name: String, _ expected: String, _ got: JSON?) -> RPCError {
        let name = prefix + name
        if let got {
            return .invalidParams("\"\(name)\" must be \(expected), got \(Params.describe(got))")
        }
        return .invalidParams("\"\(name)\" is required: \(expected)")
    }

    static func describe(_ v: JSON) -> String {
        switch v {
        case .object, .array: return v.kindDescription
        default:
            let t = v.text
            return t.count > 40 ? String(t.prefix(40)) + "…" : t
        }
    }

    public func string(_ name: String, default def: String? = nil) throws -> String {
        guard let v = raw(name) else {
            if let def { return def }
            throw fail(name, "a string", nil)
        }
        guard case .string(let s) = v else { throw fail(name, "a string", v) }
        return s
    }

    public func optionalString(_ name: String) throws -> String? {
        guard has(name) else { _ = raw(name); return nil }
        return try string(name)
    }

    /// One of a fixed set of strings.
    public func choice(_ name: String, _ options: [String], default def: String? = nil) throws -> String {
        let s = try string(name, default: def)
        guard options.contains(s) else {
            throw fail(name, "one of " + options.map { "\"\($0)\"" }.joined(separator: ", "), .string(s))
        }
        return s
    }

    public func int(_ name: String, default def: Int? = nil, in range: ClosedRange<Int>? = nil) throws -> Int {
        let expected = range.map { "an integer in \($0.lowerBound)...\($0.upperBound)" } ?? "an integer"
        guard let v = raw(name) else {
            if let def { return def }
            throw fail(name, expected, nil)
        }
        let i: Int
        switch v {
        case .int(let x): i = Int(x)
        case .double(let d) where d.rounded() == d && abs(d) < 9e15: i = Int(d)
        default: throw fail(name, expected, v)
        }
        if let range, !range.contains(i) { throw fail(name, expected, v) }
        return i
    }

    public func optionalInt(_ name: String, in range: ClosedRange<Int>? = nil) throws -> Int? {
        guard has(name) else { _ = raw(name); return nil }
        return try int(name, in: range)
    }

    public func double(_ name: String, default def: Double? = nil, in range: ClosedRange<Double>? = nil) throws -> Double {
        let expected = range.map { "a number in \($0.lowerBound)...\($0.upperBound)" } ?? "a number"
        guard let v = raw(name) else {
            if let def { return def }
            throw fail(name, expected, nil)
        }
        guard let d = v.numberValue, d.isFinite else { throw fail(name, expected, v) }
        if let range, !range.contains(d) { throw fail(name, expected, v) }
        return d
    }

    public func bool(_ name: String, default def: Bool? = nil) throws -> Bool {
        guard let v = raw(name) else {
            if let def { return def }
            throw fail(name, "true or false", nil)
        }
        guard case .bool(let b) = v else { throw fail(name, "true or false", v) }
        return b
    }

    public func stringArray(_ name: String, nonEmpty: Bool = true) throws -> [String] {
        let expected = nonEmpty ? "a non-empty array of strings" : "an array of strings"
        guard let v = raw(name) else { throw fail(name, expected, nil) }
        guard case .array(let items) = v, !(nonEmpty && items.isEmpty) else { throw fail(name, expected, v) }
        return try items.enumerated().map { i, item in
            guard case .string(let s) = item else { throw fail("\(name)[\(i)]", "a string", item) }
            return s
        }
    }

    public func object(_ name: String) throws -> [String: JSON]? {
        guard let v = raw(name) else { return nil }
        guard case .object(let o) = v else { throw fail(name, "an object", v) }
        return o
    }

    public func array(_ name: String) throws -> [JSON]? {
        guard let v = raw(name) else { return nil }
        guard case .array(let a) = v else { throw fail(name, "an array", v) }
        return a
    }

    /// A number as Float (range checked as Double).
    public func float(_ name: String, default def: Float? = nil, in range: ClosedRange<Double>? = nil) throws -> Float {
        Float(try double(name, default: def.map(Double.init), in: range))
    }

    public func optionalDouble(_ name: String, in range: ClosedRange<Double>? = nil) throws -> Double? {
        guard has(name) else { _ = raw(name); return nil }
        return try double(name, in: range)
    }

    /// A seed: an integer in 0...2^53 (exact in JSON doubles too).
    public func seed(_ name: String = "seed", default def: UInt64? = nil) throws -> UInt64? {
        guard has(name) else { _ = raw(name); return def }
        return UInt64(try int(name, in: 0...(1 << 53)))
    }

    /// The members of object parameter `name` as parameters of their own, whose errors name them
    /// `name.member`; nil when absent. Call `finish()` on it to reject unknown members.
    public func nested(_ name: String) throws -> Params? {
        guard let v = raw(name) else { return nil }
        guard case .object = v else { throw fail(name, "an object", v) }
        return try Params(method: method, v, prefix: prefix + name + ".")
    }

    /// An error about this parameter, in the same words as the accessors' ("\"name\" must be …").
    public func invalid(_ name: String, _ expected: String, got: JSON? = nil) -> RPCError {
        fail(name, expected, got)
    }

    /// Throws if the request carries parameters that were never read.
    public func finish() throws {
        let unknown = values.keys.filter { !used.contains($0) }.sorted()
        guard let first = unknown.first else { return }
        let known = used.subtracting(Params.common).sorted()
        let owner = prefix.isEmpty ? method : "\"\(prefix.dropLast())\""
        let takes = known.isEmpty ? "\(owner) takes no parameters" : "\(owner) takes " + known.map { prefix + $0 }.joined(separator: ", ")
        throw RPCError.invalidParams("unknown parameter \"\(prefix)\(first)\"; \(takes)")
    }
}
