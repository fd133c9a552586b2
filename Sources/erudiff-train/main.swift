import EruDiff
import Foundation

// erudiff-train: the long-running training procedures, one subcommand each.
// To add a subcommand, write `enum MyCommand: TrainCommand` in its own file and list it here.

let commands: [TrainCommand.Type] = [
    PretrainCommand.self,
    SampleCommand.self,
    FluxExportCommand.self,
    RefactorCommand.self,
]

let args = Array(CommandLine.arguments.dropFirst())
guard let name = args.first, let command = commands.first(where: { $0.name == name }) else {
    var usage = "usage: erudiff-train <command> [options]   (erudiff-train <command> --help for its options)\n\ncommands:\n"
    for c in commands { usage += "  \(c.name.padding(toLength: 10, withPad: " ", startingAt: 0)) \(c.summary)\n" }
    FileHandle.standardError.write(usage.data(using: .utf8)!)
    exit(args.isEmpty || args.first == "--help" || args.first == "-h" ? 0 : 2)
}
do {
    try command.run(arguments: Array(args.dropFirst()))
} catch let e as CommandError {
    log("erudiff-train \(name): \(e.description) (see erudiff-train \(name) --help)")
    exit(2)
} catch {
    log("erudiff-train \(name): \(error)")
    exit(1)
}
