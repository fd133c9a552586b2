import EruDiff
import Foundation

/// One `erudiff-train` subcommand.
protocol TrainCommand {
    static var name: String { get }
    static var summary: String { get }
    static func run(arguments: [String]) throws
}

/// A command-line mistake, printed with the command's usage.
struct UsageError: Error, CustomStringConvertible {
    let description: String
}

/// `--name value` options after a subcommand, each known by name; `--help` is answered by the caller.
struct Flags {
    private var values: [String: String] = [:]
    private(set) var switches: Set<String> = []
    /// The valued options in the order given.
    private(set) var given: [(name: String, value: String)] = []

    /// Parses `arguments`; `valued` names the options that take a value, `boolean` those that do not.
    init(_ arguments: [String], valued: Set<String>, boolean: Set<String> = []) throws {
        var i = 0
        while i < arguments.count {
            let a = arguments[i]
            guard a.hasPrefix("--") else { throw UsageError(description: "unexpected argument '\(a)'") }
            var name = String(a.dropFirst(2)), inline: String? = nil
            if let eq = name.firstIndex(of: "=") { inline = String(name[name.index(after: eq)...]); name = String(name[..<eq]) }
            if boolean.contains(name) { switches.insert(name); i += 1; continue }
            guard valued.contains(name) else { throw UsageError(description: "unknown option --\(name)") }
            guard let v = inline ?? (i + 1 < arguments.count ? arguments[i + 1] : nil) else {
                throw UsageError(description: "--\(name) needs a value")
            }
            values[name] = v
            given.append((name, v))
            i += inline == nil ? 2 : 1
        }
    }

    func string(_ name: String) -> String? { values[name] }

    func int(_ name: String) throws -> Int? {
        guard let v = values[name] else { return nil }
        guard let n = Int(v) else { throw UsageError(description: "--\(name) expects an integer, got '\(v)'") }
        return n
    }

    func float(_ name: String) throws -> Float? {
        guard let v = values[name] else { return nil }
        guard let n = Float(v), n.isFinite else { throw UsageError(description: "--\(name) expects a number, got '\(v)'") }
        return n
    }

    func has(_ name: String) -> Bool { switches.contains(name) }
}

/// Writes a line to standard error (progress and logs; results go to files and standard output).
func log(_ s: String) { FileHandle.standardError.write((s + "\n").data(using: .utf8)!) }

/// Sets option `spec` of `root` to `text` read as its type (a list comma-separated; null or none
/// clears an optional one); errors name `--flag`.
func setOption<Root>(_ spec: OptionSpec<Root>, _ text: String, in root: inout Root, flag: String) throws {
    var raw: OptionValue = .string(text)
    switch spec.type {
    case .int, .number, .seed: if let d = Double(text) { raw = .number(d) }
    case .bool: if let b = ["true": true, "false": false][text] { raw = .bool(b) }
    case .names(let c) where !c.contains(text): raw = .strings(text.split(separator: ",").map(String.init))
    default: break
    }
    guard let v = spec.nullable && ["null", "none"].contains(text) ? .null : spec.type.accept(raw) else {
        throw UsageError(description: "--\(flag) expects \(spec.type.expected), got '\(text)'")
    }
    do { try spec.set(&root, v) } catch let e as OptionError { throw UsageError(description: "--\(flag) expects \(e.expected), got '\(text)'") }
}

/// `--help` lines of options: the flag, its values and its doc.
func optionHelp<Root>(_ options: [(path: String, spec: OptionSpec<Root>)]) -> String {
    options.map { "  --\($0.path) (\($0.spec.type.expected)\($0.spec.nullable ? " or null" : ""))\n      \($0.spec.doc)\n" }.joined()
}
