#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Log lines on stderr, one `write` each so lines from the loop and the worker never interleave.
public enum Log {
    public enum Level: Int, Comparable, CaseIterable, Sendable {
        case error = 0, warn, info, debug
        public static func < (a: Level, b: Level) -> Bool { a.rawValue < b.rawValue }
        public var name: String {
            switch self {
            case .error: return "error"
            case .warn: return "warn"
            case .info: return "info"
            case .debug: return "debug"
            }
        }
        public init?(name: String) {
            guard let l = Level.allCases.first(where: { $0.name == name }) else { return nil }
            self = l
        }
    }

    /// Set once at start-up, before any thread is started.
    nonisolated(unsafe) public static var level: Level = .info
    /// The program name each line carries; set with `level`.
    nonisolated(unsafe) public static var program = "rpc-server"

    public static func error(_ message: @autoclosure () -> String) { emit(.error, message()) }
    public static func warn(_ message: @autoclosure () -> String) { emit(.warn, message()) }
    public static func info(_ message: @autoclosure () -> String) { emit(.info, message()) }
    public static func debug(_ message: @autoclosure () -> String) {
        if level >= .debug { emit(.debug, message()) }
    }

    private static func emit(_ l: Level, _ message: String) {
        guard l <= level else { return }
        var tv = timeval()
        gettimeofday(&tv, nil)
        var t = tv.tv_sec
        var tm = tm()
        gmtime_r(&t, &tm)
        let stamp = String(format4: Int(tm.tm_year) + 1900) + "-" + String(pad2: Int(tm.tm_mon) + 1) + "-"
            + String(pad2: Int(tm.tm_mday)) + "T" + String(pad2: Int(tm.tm_hour)) + ":" + String(pad2: Int(tm.tm_min))
            + ":" + String(pad2: Int(tm.tm_sec)) + "." + String(pad3: Int(tv.tv_usec) / 1000) + "Z"
        var line = "\(stamp) \(program) \(l.name): \(message)\n"
        line.withUTF8 { buf in
            var off = 0
            while off < buf.count {
                let n = write(2, buf.baseAddress! + off, buf.count - off)
                if n <= 0 { break }
                off += n
            }
        }
    }
}

extension String {
    fileprivate init(pad2 v: Int) { self = v < 10 ? "0\(v)" : "\(v)" }
    fileprivate init(pad3 v: Int) { self = v < 10 ? "00\(v)" : v < 100 ? "0\(v)" : "\(v)" }
    fileprivate init(format4 v: Int) { self = "\(v)" }
}
