import Foundation

/// One option of a procedure, declared once — its JSON name, type and allowed values, one line of doc,
/// and where it lives in the options struct `Root`, whose initial value is its default. The daemon's
/// parameter readers, erudiff-train's flags, the options' `validate()` and the param schemas of
/// protocol/openrpc.json all derive from these tables (`read`, `check`, `flattened`; DaemonTests'
/// OpenRPCTests), so a new option of a method is one line in its table. Modelled on
/// swift-argument-parser's declarations.
public struct OptionSpec<Root> {
    public let name: String
    public let type: OptionType
    /// Null is a value (an optional field: null sets nil); otherwise null counts as absent.
    public let nullable: Bool
    public let doc: String
    /// The options of a group.
    public let members: [OptionSpec<Root>]
    /// The schema name a group is published under in protocol/openrpc.json (nil: inline).
    public let component: String?
    /// The option's value in a `Root` (nil: unset).
    public let get: (Root) -> OptionValue?
    /// Stores a value of `type`; throws `OptionError` for one it cannot take all the same.
    public let set: (inout Root, OptionValue) throws -> Void

    public init(_ name: String, _ type: OptionType, nullable: Bool = false, _ doc: String, members: [OptionSpec<Root>] = [],
                component: String? = nil, get: @escaping (Root) -> OptionValue?, set: @escaping (inout Root, OptionValue) throws -> Void) {
        self.name = name; self.type = type; self.nullable = nullable; self.doc = doc; self.members = members
        self.component = component; self.get = get; self.set = set
    }

    public static func int(_ name: String, _ kp: WritableKeyPath<Root, Int>, _ range: ClosedRange<Int>, _ doc: String) -> Self {
        Self(name, .int(range), doc, get: { .int($0[keyPath: kp]) }, set: { $0[keyPath: kp] = $1.int! })
    }

    public static func int(_ name: String, _ kp: WritableKeyPath<Root, Int?>, _ range: ClosedRange<Int>, nullable: Bool = true,
                           _ doc: String) -> Self {
        Self(name, .int(range), nullable: nullable, doc, get: { $0[keyPath: kp].map { .int($0) } }, set: { $0[keyPath: kp] = $1.int })
    }

    public static func number(_ name: String, _ kp: WritableKeyPath<Root, Float>, _ range: ClosedRange<Double>, _ doc: String) -> Self {
        Self(name, .number(range), doc, get: { .number(decimal($0[keyPath: kp])) }, set: { $0[keyPath: kp] = Float($1.number!) })
    }

    public static func number(_ name: String, _ kp: WritableKeyPath<Root, Float?>, _ range: ClosedRange<Double>,
                              nullable: Bool = true, _ doc: String) -> Self {
        Self(name, .number(range), nullable: nullable, doc, get: { $0[keyPath: kp].map { .number(decimal($0)) } },
             set: { $0[keyPath: kp] = $1.number.map(Float.init) })
    }

    /// `f` as the Double its shortest decimal names (0.001, not 0.0010000000474974513).
    public static func decimal(_ f: Float) -> Double { Double("\(f)") ?? Double(f) }

    public static func bool(_ name: String, _ kp: WritableKeyPath<Root, Bool>, _ doc: String) -> Self {
        Self(name, .bool, doc, get: { .bool($0[keyPath: kp]) }, set: { $0[keyPath: kp] = $1.bool! })
    }

    public static func seed(_ kp: WritableKeyPath<Root, UInt64>, name: String = "seed", _ doc: String) -> Self {
        Self(name, .seed, doc, get: { .int(Int(truncatingIfNeeded: $0[keyPath: kp])) }, set: { $0[keyPath: kp] = UInt64($1.int!) })
    }

    public static func text(_ name: String, _ kp: WritableKeyPath<Root, String>, _ doc: String) -> Self {
        Self(name, .text, doc, get: { .string($0[keyPath: kp]) }, set: { $0[keyPath: kp] = $1.string! })
    }

    public static func choice(_ name: String, _ kp: WritableKeyPath<Root, String>, _ choices: [String], _ doc: String) -> Self {
        Self(name, .choice(choices), doc, get: { .string($0[keyPath: kp]) }, set: { $0[keyPath: kp] = $1.string! })
    }

    public static func choice<E: RawRepresentable & CaseIterable>(_ name: String, _ kp: WritableKeyPath<Root, E>, _ doc: String) -> Self
        where E.RawValue == String {
        Self(name, .choice(E.allCases.map(\.rawValue)), doc, get: { .string($0[keyPath: kp].rawValue) },
             set: { $0[keyPath: kp] = E(rawValue: $1.string!)! })
    }

    /// A nested object of options.
    public static func group(_ name: String, _ members: [OptionSpec<Root>], component: String? = nil, _ doc: String) -> Self {
        Self(name, .group(orBool: false), doc, members: members, component: component, get: { _ in nil }, set: { _, _ in })
    }

    /// An optional struct as a nested object: absent keeps it, an object sets `fresh` with the members
    /// given; with `orBool`, true sets `fresh` and false nil.
    public static func group<Sub>(_ name: String, _ kp: WritableKeyPath<Root, Sub?>, _ members: [OptionSpec<Sub>], fresh: Sub,
                                  orBool: Bool = false, component: String? = nil, _ doc: String) -> Self {
        Self(name, .group(orBool: orBool), doc, members: members.map { $0.lifted(kp, fresh: fresh) }, component: component,
             get: { orBool && $0[keyPath: kp] == nil ? .bool(false) : nil }, set: { $0[keyPath: kp] = $1.bool == false ? nil : fresh })
    }

    /// This option of a `Sub` as an option of a struct that holds one at `kp`.
    public func lifted<R>(_ kp: WritableKeyPath<R, Root>) -> OptionSpec<R> {
        let (get, set) = (self.get, self.set)
        return OptionSpec<R>(name, type, nullable: nullable, doc, members: members.map { $0.lifted(kp) }, component: component,
                             get: { get($0[keyPath: kp]) }, set: { try set(&$0[keyPath: kp], $1) })
    }

    /// This option of a `Sub` as an option of a struct that may hold one at `kp` (`fresh` when it does not).
    func lifted<R>(_ kp: WritableKeyPath<R, Root?>, fresh: Root) -> OptionSpec<R> {
        let (get, set) = (self.get, self.set)
        return OptionSpec<R>(name, type, nullable: nullable, doc, members: members.map { $0.lifted(kp, fresh: fresh) }, component: component,
                             get: { get($0[keyPath: kp] ?? fresh) },
                             set: { root, v in var s = root[keyPath: kp] ?? fresh; try set(&s, v); root[keyPath: kp] = s })
    }
}

/// The JSON type of an option and the values it allows.
public enum OptionType: Equatable, Sendable {
    case int(ClosedRange<Int>), number(ClosedRange<Double>), bool, choice([String])
    /// A string in a form the option parses (its doc names the form).
    case text
    /// One of `choices`, or a non-empty list of names.
    case names([String])
    /// An integer in 0...2^53 (exact in JSON doubles).
    case seed
    /// An object of options (the spec's `members`); with `orBool` also true (their defaults) or false (none).
    case group(orBool: Bool)

    /// What a value must be, in the words of the daemon's errors ("an integer in 1...1024").
    public var expected: String {
        switch self {
        case .int(let r): return "an integer in \(r.lowerBound)...\(r.upperBound)"
        case .number(let r): return "a number in \(r.lowerBound)...\(r.upperBound)"
        case .bool: return "true or false"
        case .choice(let c): return "one of " + c.map { "\"\($0)\"" }.joined(separator: ", ")
        case .text: return "a string"
        case .names(let c): return c.map { "\"\($0)\"" }.joined(separator: ", ") + " or a non-empty array of strings"
        case .seed: return "an integer in 0...\(1 << 53)"
        case .group(let orBool): return orBool ? "true, false or an object" : "an object"
        }
    }

    /// `v` as a value of this type (integral numbers as integers), nil when it is not one or is out of range.
    public func accept(_ v: OptionValue) -> OptionValue? {
        switch (self, v) {
        case (.int(let r), .int(let i)): return r.contains(i) ? v : nil
        case (.int, .number(let d)), (.seed, .number(let d)): return d.rounded() == d && abs(d) < 9e15 ? accept(.int(Int(d))) : nil
        case (.seed, .int(let i)): return i >= 0 && i <= 1 << 53 ? v : nil
        case (.number(let r), .int(let i)): return r.contains(Double(i)) ? .number(Double(i)) : nil
        case (.number(let r), .number(let d)): return d.isFinite && r.contains(d) ? v : nil
        case (.bool, .bool), (.text, .string): return v
        case (.choice(let c), .string(let s)), (.names(let c), .string(let s)): return c.contains(s) ? v : nil
        case (.names, .strings(let list)): return list.isEmpty ? nil : v
        default: return nil
        }
    }
}

/// An option's value as JSON has it (`other`: an object, or an array that is not all strings).
public enum OptionValue: Equatable, Sendable, CustomStringConvertible {
    case null, bool(Bool), int(Int), number(Double), string(String), strings([String]), other

    public var int: Int? { if case .int(let i) = self { return i }; return nil }
    public var number: Double? { if case .number(let d) = self { return d }; return int.map(Double.init) }
    public var string: String? { if case .string(let s) = self { return s }; return nil }
    public var bool: Bool? { if case .bool(let b) = self { return b }; return nil }
    public var strings: [String]? { if case .strings(let s) = self { return s }; return nil }

    /// A value `JSONSerialization` read.
    public init(foundation v: Any) {
        if v is NSNull { self = .null }
        else if let n = v as? NSNumber { self = String(cString: n.objCType) == "c" ? .bool(n.boolValue) : .number(n.doubleValue) }
        else if let s = v as? String { self = .string(s) }
        else { self = (v as? [Any] as? [String]).map { .strings($0) } ?? .other }
    }

    public var description: String {
        switch self {
        case .null: return "null"
        case .bool(let b): return "\(b)"
        case .int(let i): return "\(i)"
        case .number(let d): return "\(d)"
        case .string(let s): return "\"\(s)\""
        case .strings(let s): return "[" + s.map { "\"\($0)\"" }.joined(separator: ", ") + "]"
        case .other: return "an object"
        }
    }
}

/// Thrown by an option's setter for a value of its type that it cannot take all the same; readers
/// report it as `"name" must be <expected>, got <value>`.
public struct OptionError: Error {
    public let expected: String
    public init(_ expected: String) { self.expected = expected }
}

extension Array {
    /// Reads the options `source` has into `root` (absent ones keep their value), then, with `finish`,
    /// rejects members nobody read.
    public func read<Root>(into root: inout Root, from source: OptionSource, finish: Bool = true) throws where Element == OptionSpec<Root> {
        for spec in self {
            let v = source.value(spec.name)
            if case .group(let orBool) = spec.type {
                if orBool, let b = v?.bool {
                    try spec.set(&root, .bool(b))
                } else if let v, v != .null {
                    guard v == .other, let sub = try source.group(spec.name) else { throw source.invalid(spec.name, spec.type.expected) }
                    try spec.set(&root, .bool(true))
                    try spec.members.read(into: &root, from: sub)
                }
            } else if let v, v != .null || spec.nullable {
                guard let value = v == .null ? .null : spec.type.accept(v) else { throw source.invalid(spec.name, spec.type.expected) }
                do { try spec.set(&root, value) } catch let e as OptionError { throw source.invalid(spec.name, e.expected) }
            }
        }
        if finish { try source.finish() }
    }

    /// Throws `EruDiffError.invalidArgument` naming the first option of `root` outside its type's values
    /// (`owner`: the method, for the message); text options are checked by parsing them.
    public func check<Root>(_ root: Root, _ owner: String, prefix: String = "") throws where Element == OptionSpec<Root> {
        for spec in self {
            if case .group = spec.type { try spec.members.check(root, owner, prefix: prefix + spec.name + "."); continue }
            guard let v = spec.get(root), v != .null else { continue }
            var copy = root
            do {
                guard spec.type.accept(v) != nil else { throw OptionError(spec.type.expected) }
                if spec.type == .text { try spec.set(&copy, v) }
            } catch let e as OptionError {
                throw EruDiffError.invalidArgument("\(owner): \"\(prefix)\(spec.name)\" must be \(e.expected), got \(v)")
            }
        }
    }

    /// The options with the groups' members by their dotted paths ("anchors.perPair"), for flags.
    public func flattened<Root>(_ prefix: String = "") -> [(path: String, spec: OptionSpec<Root>)] where Element == OptionSpec<Root> {
        flatMap { s in
            if case .group = s.type { return s.members.flattened(prefix + s.name + ".") }
            return [(prefix + s.name, s)]
        }
    }
}

/// The members of a JSON object that `JSONSerialization` parsed (a study file, the daemon's params)
/// as options are read from them: what was read, and errors naming the member by its path.
public final class OptionSource {
    let object: [String: Any], path: String
    private var read: Set<String> = []

    public init(_ object: [String: Any], path: String = "") { self.object = object; self.path = path }

    /// The member's value, nil when absent; marks it as read.
    func value(_ name: String) -> OptionValue? {
        read.insert(name)
        return object[name].map(OptionValue.init(foundation:))
    }

    /// The object member `name` as a source of its own (nil when absent or null).
    func group(_ name: String) throws -> OptionSource? {
        guard let v = value(name), v != .null else { return nil }
        guard let o = object[name] as? [String: Any] else { throw invalid(name, "an object") }
        return OptionSource(o, path: path + name + ".")
    }

    func invalid(_ name: String, _ expected: String) -> Error {
        EruDiffError.invalidArgument("\"\(path)\(name)\" must be \(expected), got \(value(name) ?? .null)")
    }

    /// Throws naming a member that nothing read.
    func finish() throws {
        guard let extra = object.keys.filter({ !read.contains($0) }).min() else { return }
        throw EruDiffError.invalidArgument("unknown parameter \"\(path)\(extra)\"; \(path.isEmpty ? "a study" : "\"\(path.dropLast())\"") takes "
                                           + read.sorted().map { path + $0 }.joined(separator: ", "))
    }
}
