import Foundation

/// An error of an erudiff-train or erudiff-bench command in words: a mistake in its arguments (printed
/// with the command's usage), or a failure it reports.
public struct CommandError: Error, CustomStringConvertible {
    public let description: String
    public init(description: String) { self.description = description }
}

/// `--name value` (or `--name=value`) options after a subcommand, each known by name; `--help` is
/// answered by the caller.
public struct Flags {
    public private(set) var switches: Set<String> = []
    /// The valued options in the order given.
    public private(set) var given: [(name: String, value: String)] = []

    /// Parses `arguments`; `valued` names the options that take a value, `boolean` those that do not.
    public init(_ arguments: [String], valued: Set<String>, boolean: Set<String> = []) throws {
        var i = 0
        while i < arguments.count {
            let a = arguments[i]
            guard a.hasPrefix("--") else { throw CommandError(description: "unexpected argument '\(a)'") }
            var name = String(a.dropFirst(2)), inline: String? = nil
            if let eq = name.firstIndex(of: "=") { inline = String(name[name.index(after: eq)...]); name = String(name[..<eq]) }
            if boolean.contains(name) { switches.insert(name); i += 1; continue }
            guard valued.contains(name) else { throw CommandError(description: "unknown option --\(name)") }
            guard let v = inline ?? (i + 1 < arguments.count ? arguments[i + 1] : nil) else { throw CommandError(description: "--\(name) needs a value") }
            given.append((name, v))
            i += inline == nil ? 2 : 1
        }
    }

    /// The last value of `--name`.
    public func string(_ name: String) -> String? { given.last { $0.name == name }?.value }

    public func int(_ name: String) throws -> Int? {
        guard let v = string(name) else { return nil }
        guard let n = Int(v) else { throw CommandError(description: "--\(name) expects an integer, got '\(v)'") }
        return n
    }

    public func positive(_ name: String) throws -> Int? {
        guard let n = try int(name) else { return nil }
        guard n > 0 else { throw CommandError(description: "--\(name) needs a positive integer") }
        return n
    }

    public func float(_ name: String) throws -> Float? {
        guard let v = string(name) else { return nil }
        guard let n = Float(v), n.isFinite else { throw CommandError(description: "--\(name) expects a number, got '\(v)'") }
        return n
    }

    public func has(_ name: String) -> Bool { switches.contains(name) }

    /// Sets option `spec` of `root` to `text` read as its type (a list comma-separated; null or none
    /// clears an optional one); errors name `--flag`.
    public static func set<Root>(_ spec: OptionSpec<Root>, _ text: String, in root: inout Root, flag: String) throws {
        var raw: OptionValue = .string(text)
        switch spec.type {
        case .int, .number, .seed: if let d = Double(text) { raw = .number(d) }
        case .bool: if let b = ["true": true, "false": false][text] { raw = .bool(b) }
        case .names(let c) where !c.contains(text): raw = .strings(text.split(separator: ",").map(String.init))
        default: break
        }
        guard let v = spec.nullable && ["null", "none"].contains(text) ? .null : spec.type.accept(raw) else {
            throw CommandError(description: "--\(flag) expects \(spec.type.expected), got '\(text)'")
        }
        do { try spec.set(&root, v) } catch let e as OptionError { throw CommandError(description: "--\(flag) expects \(e.expected), got '\(text)'") }
    }

    /// `--help` lines of options: the flag, its values and its doc.
    public static func help<Root>(_ options: [(path: String, spec: OptionSpec<Root>)]) -> String {
        options.map { "  --\($0.path) (\($0.spec.type.expected)\($0.spec.nullable ? " or null" : ""))\n      \($0.spec.doc)\n" }.joined()
    }
}
