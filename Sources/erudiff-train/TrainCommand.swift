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
            if let v = inline { values[name] = v; i += 1; continue }
            guard i + 1 < arguments.count else { throw UsageError(description: "--\(name) needs a value") }
            values[name] = arguments[i + 1]
            i += 2
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
