import Foundation

/// The server's own command-line flags: socket, limits, log level, checkpoints, test methods. An
/// application reads its own flags first and hands every other one to `parse(_:_:)`.
public struct ServerOptions: Sendable {
    /// Where the socket goes without `--socket`: `$XDG_RUNTIME_DIR/<dir>/<file>`, else `/tmp/<dir>-$UID/<file>`.
    public let defaultSocketPath: String
    public var socketPath: String
    public var logLevel: Log.Level = .info
    /// Clients connected at once. A new client past it takes the place of the connection idle the
    /// longest (one that owes it no reply), which is told why before it is closed; with none idle,
    /// the new client is told why and closed.
    public var maxConnections = 64
    public var maxMessageBytes = 16 << 20
    /// Requests in one batch; a longer batch is one -32600 error.
    public var maxBatch = 1000
    /// Largest reply (a batch's replies together); a larger one is replaced by -32005.
    public var maxReplyBytes = 64 << 20
    /// Bytes of unfinished frames held for all clients together: past it the daemon stops reading
    /// from the clients whose frames it holds (each may always have 64 KiB) until there is room.
    public var maxPendingBytes = 64 << 20
    /// Seconds a frame may take from its first byte to its last; then -32006 and the connection closes.
    public var frameTimeout = 30
    /// Percent of the worker's time that long jobs (past 2 s of worker time) keep while short ones wait.
    public var longJobShare = 50
    /// Jobs admitted at once (running plus waiting); more get -32001 busy.
    public var maxQueue = 32
    /// Checkpointable jobs are checkpointed every this many units (an application's own long jobs may
    /// follow it too).
    public var checkpointEvery = 25
    /// Serves `test/sleep` and `test/echo`, the test suites' diagnostics (no public contract has them).
    public var enableTestMethods = false
    /// Seconds with no client connected and no job admitted after which the server checkpoints (as at
    /// `shutdown`) and exits; 0 = never.
    public var idleExit: Double = 0
    /// A listening socket inherited from a service manager (`SocketActivation.take()`), served instead
    /// of binding `socketPath`; not a flag.
    public var inheritedListener: Int32?
    private let socketHelp: String

    public init(runtimeDirectory dir: String, socketName file: String) {
        let runtime = ProcessInfo.processInfo.environment["XDG_RUNTIME_DIR"] ?? ""
        defaultSocketPath = runtime.isEmpty ? "/tmp/\(dir)-\(getuid())/\(file)" : "\(runtime)/\(dir)/\(file)"
        socketPath = defaultSocketPath
        socketHelp = "$XDG_RUNTIME_DIR/\(dir)/\(file),\n" + String(repeating: " ", count: 28) + "else /tmp/\(dir)-$UID/\(file)"
    }

    /// The help lines of these flags, for the application's usage text.
    public var usage: String {
        """
          --socket PATH             socket path (default: \(socketHelp))
          --log-level LEVEL         error, warn, info (default) or debug
          --max-connections N       simultaneous clients; past it a new client takes the place of an
                                    idle one, which is told why (default 64)
          --max-message-bytes N     largest accepted message (default 16777216)
          --max-batch N             requests in one batch (default 1000)
          --max-reply-bytes N       largest reply, a batch's replies together (default 67108864)
          --max-pending-bytes N     unfinished frames held for all clients together (default 67108864)
          --frame-timeout SECONDS   time from a frame's first byte to its last (default 30)
          --long-job-share PERCENT  worker time kept by long jobs while short ones wait (default 50)
          --max-queue N             jobs admitted at once, running and waiting (default 32)
          --checkpoint-every N      checkpoint long jobs every N units, e.g. training steps (default 25)
          --idle-exit DURATION      exit (after checkpointing, as at shutdown) once no client has been
                                    connected and no job admitted for this long, e.g. 30m, 90s; 0 = never
                                    (default 0)
          --enable-test-methods     serve the test/* diagnostics methods (for test suites)
        """
    }

    /// Reads `flag` (and its value from `args`); throws `UsageError` for a flag nobody knows.
    public mutating func parse(_ flag: String, _ args: inout Arguments) throws {
        switch flag {
        case "--socket": socketPath = try args.value(for: flag)
        case "--log-level":
            let v = try args.value(for: flag)
            guard let l = Log.Level(name: v) else {
                throw UsageError("--log-level must be error, warn, info or debug, got \"\(v)\"")
            }
            logLevel = l
        case "--max-connections": maxConnections = try args.positive(for: flag)
        case "--max-message-bytes": maxMessageBytes = try args.positive(for: flag)
        case "--max-batch": maxBatch = try args.positive(for: flag)
        case "--max-reply-bytes": maxReplyBytes = try args.positive(for: flag)
        case "--max-pending-bytes": maxPendingBytes = try args.positive(for: flag)
        case "--frame-timeout": frameTimeout = try args.positive(for: flag)
        case "--long-job-share":
            longJobShare = try args.positive(for: flag)
            guard longJobShare < 100 else { throw UsageError("--long-job-share needs a percentage in 1...99, got \(longJobShare)") }
        case "--max-queue": maxQueue = try args.positive(for: flag)
        case "--checkpoint-every": checkpointEvery = try args.positive(for: flag)
        case "--enable-test-methods": enableTestMethods = true
        case "--idle-exit":
            let v = try args.value(for: flag)
            guard let seconds = DurationText.seconds(v) else {
                throw UsageError("--idle-exit needs a duration such as 30m, 90s, 1h or 0 (never), got \"\(v)\"")
            }
            idleExit = seconds
        default:
            throw UsageError("unknown option \"\(flag.count > 60 ? String(flag.prefix(60)) + "…" : flag)\" (see --help)")
        }
    }

    /// Checks what single flags cannot (a socket path a Unix socket can hold).
    public func validate() throws {
        guard !socketPath.isEmpty else { throw UsageError("--socket must not be empty") }
        guard socketPath.utf8.count < 108 else {
            throw UsageError("socket path is \(socketPath.utf8.count) bytes; Unix sockets allow at most 107")
        }
    }
}

/// A bad command line, or `--help` (then `isHelp` is set and `description` is the usage text).
public struct UsageError: Error, CustomStringConvertible {
    public let description: String
    public var isHelp = false

    public init(_ description: String, isHelp: Bool = false) {
        self.description = description
        self.isHelp = isHelp
    }
}

/// A command line read flag by flag; `--flag=value` reads as `--flag value`.
public struct Arguments {
    private var rest: ArraySlice<String>

    public init(_ args: [String]) { rest = args[...] }

    /// The next flag, nil at the end.
    public mutating func nextFlag() -> String? {
        guard let arg = rest.popFirst() else { return nil }
        guard arg.hasPrefix("--"), let eq = arg.firstIndex(of: "=") else { return arg }
        rest.insert(String(arg[arg.index(after: eq)...]), at: rest.startIndex)
        return String(arg[..<eq])
    }

    public mutating func value(for flag: String) throws -> String {
        guard let v = rest.popFirst() else { throw UsageError("\(flag) needs a value") }
        return v
    }

    public mutating func positive(for flag: String) throws -> Int {
        let v = try value(for: flag)
        guard let n = Int(v), n > 0 else { throw UsageError("\(flag) needs a positive integer, got \"\(v)\"") }
        return n
    }
}
