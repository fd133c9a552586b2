import Foundation
import XCTest
import EruDiff
@testable import Daemon

/// protocol/openrpc.json's params of the methods that read options with tables (`OptionSpec`) are made
/// from those tables — names, types, ranges, defaults and docs, and the `Lora` and
/// `DislocationSettings` schemas — and the committed file must equal what they make. After changing a
/// table, write the file anew with
///
///     ERUDIFF_WRITE_OPENRPC=1 swift test -c release -Xswiftc -enable-testing --filter OpenRPCTests
///
/// Every other part of the document (results, examples, the methods' own params) is written by hand
/// and kept as it is.
final class OpenRPCTests: XCTestCase {
    static let file = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("protocol/openrpc.json")

    /// Each method's options as its reader takes them (with the daemon's defaults), and the params it
    /// reads by hand.
    static let methods: [(name: String, options: [OptionInfo], own: Set<String>)] = [
        ("sample", SampleParams.specs.info(SampleParams()), ["prompt", "prompts", "seed", "output"]),
        ("matchDistributions", DistributionMatchingOptions.specs.info(DistributionMatchingOptions()), ["pairs", "set"]),
        ("rlStep", NegativeOnlyRLOptions.specs.info(NegativeOnlyRLOptions()), ["prompts", "set", "kinds", "captions", "samples"]),
        ("evaluate", EvaluateParams.Request.specs.info(EvaluateParams.Request()), ["items"]),
    ]

    func testTheOptionSchemasAreTheTables() throws {
        let text = try String(contentsOf: Self.file, encoding: .utf8)
        let made = try Self.generate(text)
        if ProcessInfo.processInfo.environment["ERUDIFF_WRITE_OPENRPC"] == "1" {
            try made.write(to: Self.file, atomically: true, encoding: .utf8)
            return
        }
        let (a, b) = (text.components(separatedBy: "\n"), made.components(separatedBy: "\n"))
        if let i = (0..<min(a.count, b.count)).first(where: { a[$0] != b[$0] }) ?? (a.count == b.count ? nil : min(a.count, b.count)) {
            XCTFail("protocol/openrpc.json differs from the option tables at line \(i + 1):\n  file:   \(i < a.count ? a[i] : "")\n"
                    + "  tables: \(i < b.count ? b[i] : "")\nwrite it anew: ERUDIFF_WRITE_OPENRPC=1 swift test --filter OpenRPCTests")
        }
    }

    /// The hand-written params of the document stay; a method's table-read params are replaced,
    /// missing ones added before `model`, stale ones dropped.
    func testMergeKeepsHandWrittenParamsAndDropsStaleOnes() throws {
        let doc = #"{"methods": [{"name": "rlStep", "params": [{"name": "set", "x": 1}, {"name": "gone"}, {"name": "groupSize"}, {"name": "model"}]}]}"#
        let out = try Self.generate(doc, components: false)
        let params = try XCTUnwrap(((try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any])?["methods"] as? [[String: Any]])?[0]["params"] as? [[String: Any]])
        let names = params.compactMap { $0["name"] as? String }
        XCTAssertEqual(names.first, "set")
        XCTAssertEqual(params.first?["x"] as? Int, 1)
        XCTAssertFalse(names.contains("gone"))
        XCTAssertEqual(names.last, "model")
        XCTAssertEqual(Set(names), Set(["set", "model"] + NegativeOnlyRLOptions.specs.map(\.name)))
    }

    // MARK: Making the document

    static func generate(_ text: String, components: Bool = true) throws -> String {
        var p = OrderedJSON.Parser(Array(text.utf8))
        var doc = try p.value()
        var schemas: [String: OrderedJSON] = [:]
        doc["methods"] = .array((doc["methods"]?.array ?? []).map { m in
            guard let name = m["name"]?.string, let table = methods.first(where: { $0.name == name }) else { return m }
            var params = (m["params"]?.array ?? []).compactMap { p -> OrderedJSON? in
                guard let n = p["name"]?.string else { return p }
                if let o = table.options.first(where: { $0.name == n }) { return param(o, &schemas) }
                return table.own.contains(n) || ["model", "workDoneToken"].contains(n) ? p : nil
            }
            let present = Set(params.compactMap { $0["name"]?.string })
            let at = params.firstIndex { $0["name"]?.string == "model" } ?? params.count
            params.insert(contentsOf: table.options.filter { !present.contains($0.name) }.map { param($0, &schemas) }, at: at)
            var m = m
            m["params"] = .array(params)
            return m
        })
        if components, var c = doc["components"], var s = c["schemas"] {
            for (name, schema) in schemas {
                var merged = s[name].flatMap { $0["description"] }.map { OrderedJSON.object([("description", $0)]) } ?? .object([])
                for (k, v) in schema.members { merged[k] = v }
                s[name] = merged
            }
            c["schemas"] = s
            doc["components"] = c
        }
        return doc.text() + "\n"
    }

    static func param(_ o: OptionInfo, _ schemas: inout [String: OrderedJSON]) -> OrderedJSON {
        .object([("name", .string(o.name)), ("description", .string(o.doc)), ("schema", schema(o, &schemas))])
    }

    /// The JSON schema of an option; a group with a component name is referred to, and its schema
    /// goes into `schemas`.
    static func schema(_ o: OptionInfo, _ schemas: inout [String: OrderedJSON]) -> OrderedJSON {
        var s: [(String, OrderedJSON)] = []
        func type(_ t: String) { s.append(("type", o.nullable ? .array([.string(t), .string("null")]) : .string(t))) }
        func range<T: Comparable>(_ r: ClosedRange<T>, _ f: (T) -> OrderedJSON) { s += [("minimum", f(r.lowerBound)), ("maximum", f(r.upperBound))] }
        switch o.type {
        case .int(let r): type("integer"); range(r) { .int($0) }
        case .number(let r): type("number"); range(r) { .number($0) }
        case .seed: type("integer"); range(0...(1 << 53)) { .int($0) }
        case .bool: type("boolean")
        case .choice(let c): type("string"); s.append(("enum", .array(c.map { .string($0) })))
        case .text: type("string")
        case .names(let c):
            s.append(("oneOf", .array([.object([("type", .string("string")), ("enum", .array(c.map { .string($0) }))]),
                                       .object([("type", .string("array")), ("items", .object([("type", .string("string"))])),
                                                ("minItems", .int(1))])])))
        case .group(let orBool):
            let properties = o.members.map { m -> (String, OrderedJSON) in
                var ms = schema(m, &schemas)
                ms["description"] = .string(m.doc)
                return (m.name, ms)
            }
            let object = OrderedJSON.object([("type", .string("object")), ("additionalProperties", .bool(false)),
                                             ("properties", .object(properties))])
            let whole = orBool ? OrderedJSON.object([("oneOf", .array([.object([("type", .string("boolean"))]), object]))]) : object
            guard let c = o.component else { return whole }
            schemas[c] = whole
            return .object([("$ref", .string("#/components/schemas/" + c))])
        }
        if case .group = o.type {} else if let d = o.defaultValue ?? (o.nullable ? .null : nil) { s.append(("default", OrderedJSON(d))) }
        return .object(s)
    }
}

/// JSON that keeps the order of object members and the text of numbers, printed as Python's
/// `json.dumps(indent=2, ensure_ascii=False)` prints (the form protocol/openrpc.json is kept in).
enum OrderedJSON: Equatable {
    case literal(String)
    case string(String)
    case array([OrderedJSON])
    case object([(String, OrderedJSON)])

    static func int(_ i: Int) -> Self { .literal("\(i)") }
    static func number(_ d: Double) -> Self { .literal(d == d.rounded() && abs(d) < 1e15 ? "\(Int(d))" : "\(d)") }
    static func bool(_ b: Bool) -> Self { .literal("\(b)") }

    init(_ v: OptionValue) {
        switch v {
        case .null, .other: self = .literal("null")
        case .bool(let b): self = .bool(b)
        case .int(let i): self = .int(i)
        case .number(let d): self = .number(d)
        case .string(let s): self = .string(s)
        case .strings(let s): self = .array(s.map { .string($0) })
        }
    }

    static func == (a: Self, b: Self) -> Bool { a.text() == b.text() }

    var string: String? { if case .string(let s) = self { return s }; return nil }
    var array: [OrderedJSON]? { if case .array(let a) = self { return a }; return nil }
    var members: [(String, OrderedJSON)] { if case .object(let o) = self { return o }; return [] }

    subscript(key: String) -> OrderedJSON? {
        get { members.first { $0.0 == key }?.1 }
        set {
            guard case .object(var o) = self else { return }
            if let i = o.firstIndex(where: { $0.0 == key }) {
                if let newValue { o[i].1 = newValue } else { o.remove(at: i) }
            } else if let newValue { o.append((key, newValue)) }
            self = .object(o)
        }
    }

    func text(_ indent: String = "") -> String {
        let inner = indent + "  "
        switch self {
        case .literal(let t): return t
        case .string(let s): return Self.quote(s)
        case .array(let a):
            return a.isEmpty ? "[]" : "[\n" + a.map { inner + $0.text(inner) }.joined(separator: ",\n") + "\n\(indent)]"
        case .object(let o):
            return o.isEmpty ? "{}" : "{\n" + o.map { inner + Self.quote($0.0) + ": " + $0.1.text(inner) }.joined(separator: ",\n") + "\n\(indent)}"
        }
    }

    /// Python's quoting (`ensure_ascii=False`).
    static func quote(_ s: String) -> String {
        var out = "\""
        for c in s.unicodeScalars {
            switch c {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            case _ where c.value < 0x20: out += String(format: "\\u%04x", c.value)
            default: out.unicodeScalars.append(c)
            }
        }
        return out + "\""
    }

    struct Parser {
        let bytes: [UInt8]
        var i = 0
        init(_ bytes: [UInt8]) { self.bytes = bytes }

        mutating func skip() { while i < bytes.count, [0x20, 0x0A, 0x0D, 0x09].contains(bytes[i]) { i += 1 } }

        mutating func value() throws -> OrderedJSON {
            skip()
            guard i < bytes.count else { throw OptionError("more JSON") }
            switch bytes[i] {
            case UInt8(ascii: "{"):
                i += 1
                var o: [(String, OrderedJSON)] = []
                skip()
                if bytes[i] == UInt8(ascii: "}") { i += 1; return .object(o) }
                while true {
                    skip()
                    guard case .string(let k) = try value() else { throw OptionError("a member name") }
                    skip(); i += 1  // ':'
                    o.append((k, try value()))
                    skip()
                    i += 1
                    if bytes[i - 1] == UInt8(ascii: "}") { return .object(o) }
                }
            case UInt8(ascii: "["):
                i += 1
                var a: [OrderedJSON] = []
                skip()
                if bytes[i] == UInt8(ascii: "]") { i += 1; return .array(a) }
                while true {
                    a.append(try value())
                    skip()
                    i += 1
                    if bytes[i - 1] == UInt8(ascii: "]") { return .array(a) }
                }
            case UInt8(ascii: "\""):
                let start = i
                i += 1
                while bytes[i] != UInt8(ascii: "\"") { i += bytes[i] == UInt8(ascii: "\\") ? 2 : 1 }
                i += 1
                let s = try JSONSerialization.jsonObject(with: Data(bytes[start..<i]), options: .fragmentsAllowed) as! String
                return .string(s)
            default:
                let start = i
                while i < bytes.count, !",}] \n\r\t".utf8.contains(bytes[i]) { i += 1 }
                return .literal(String(decoding: bytes[start..<i], as: UTF8.self))
            }
        }
    }
}

/// An option described without its struct, with its value in the defaults its table was described with.
struct OptionInfo {
    let name: String, type: OptionType, nullable: Bool, doc: String, defaultValue: OptionValue?
    let members: [OptionInfo]
    let component: String?
}

extension Array {
    func info<Root>(_ defaults: Root) -> [OptionInfo] where Element == OptionSpec<Root> {
        map { OptionInfo(name: $0.name, type: $0.type, nullable: $0.nullable, doc: $0.doc, defaultValue: $0.get(defaults),
                         members: $0.members.info(defaults), component: $0.component) }
    }
}
