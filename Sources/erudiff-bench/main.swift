import Foundation

// erudiff-bench: measurements of the numeric core, one subcommand each.
// To add a subcommand, write `enum MyBench: BenchCommand` in its own file and list it here.

let commands: [BenchCommand.Type] = [
    KernelsBench.self,
    TextEncoderBench.self,
    FluxBench.self,
    DaemonBench.self,
]

let args = Array(CommandLine.arguments.dropFirst())
guard let name = args.first, let command = commands.first(where: { $0.name == name }) else {
    var usage = "usage: erudiff-bench <command> [options]\n\ncommands:\n"
    for c in commands { usage += "  \(c.name.padding(toLength: 10, withPad: " ", startingAt: 0)) \(c.summary)\n" }
    FileHandle.standardError.write(usage.data(using: .utf8)!)
    exit(args.isEmpty || args.first == "--help" || args.first == "-h" ? 0 : 2)
}
do {
    try command.run(arguments: Array(args.dropFirst()))
} catch {
    FileHandle.standardError.write("erudiff-bench \(name): \(error)\n".data(using: .utf8)!)
    exit(1)
}
