import EruDiff
import Foundation

/// One `erudiff-train` subcommand.
protocol TrainCommand {
    static var name: String { get }
    static var summary: String { get }
    static func run(arguments: [String]) throws
}

/// Writes a line to standard error (progress and logs; results go to files and standard output).
func log(_ s: String) { FileHandle.standardError.write((s + "\n").data(using: .utf8)!) }
