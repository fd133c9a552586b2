import EruDiff
import Foundation
import Tensors

/// `erudiff-bench daemon`: what the daemon costs and saves, in one run (DESIGN §7):
///
/// - warm `sample` of one image over the socket (a connection kept open, and a fresh connection per
///   call as the shell client makes) against the same sampling called in-process (`FlowModel`
///   directly, with and without the PNG encoding the daemon also does), interleaved call by call so
///   that machine noise hits both alike; medians, and CPU seconds per call from /proc;
/// - a cold start of the same work: a fresh erudiffd (load the model, listen), one sample, exit;
/// - the daemon's resident memory (VmRSS, VmHWM) after the samples and after a `matchDistributions`.
enum DaemonBench: BenchCommand {
    static let name = "daemon"
    static let summary = "erudiffd: warm sample over the socket vs in-process vs cold start; resident memory"

    static let usage = """
    usage: erudiff-bench daemon [--erudiffd PATH] [--model DIR] [--steps N] [--reps N] [--cold N] [--threads N]
                                [--match JSON] [--json]
      --erudiffd   the daemon binary (default: erudiffd beside this executable)
      --model      the model folder (default models/mini)
      --steps      sampler steps of the one-image sample (default 20), --reps warm calls (default 30),
      --cold       cold starts (default 3), --threads for both sides (default 2)
      --match      params of the matchDistributions run before the last memory reading
                   (default: 30 steps on world:train, batch 8, 2 anchors of 20 steps per pair)
    """

    static func run(arguments: [String]) throws {
        if arguments.contains("--help") || arguments.contains("-h") { print(usage); return }
        let f = try Flags(arguments, valued: ["erudiffd", "model", "steps", "reps", "cold", "threads", "match"], boolean: ["json"])
        let daemonPath = f.string("erudiffd") ?? URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
            .deletingLastPathComponent().appendingPathComponent("erudiffd").path
        let modelDir = f.string("model") ?? "models/mini", json = f.has("json")
        let steps = try f.positive("steps") ?? 20, reps = try f.positive("reps") ?? 30, colds = try f.positive("cold") ?? 3
        let threads = try f.positive("threads") ?? 2
        let match = f.string("match") ?? #"{"set": "world:train", "steps": 30, "batchSize": 8, "anchors": {"perPair": 2}, "dislocation": false}"#
        let model = URL(fileURLWithPath: modelDir).standardizedFileURL.path
        guard FileManager.default.isExecutableFile(atPath: daemonPath) else {
            throw CommandError(description: "no erudiffd at \(daemonPath) (build it, or pass --erudiffd)")
        }
        BLAS.setThreads(threads)
        Parallel.threads = threads
        let prompt = "the flag of Japan"
        let request = #"{"jsonrpc":"2.0","id":1,"method":"sample","params":{"prompt":"\#(prompt)","seed":7,"steps":\#(steps),"keep":false}}"#

        // In-process.
        let t0 = Stopwatch.now()
        let flow = try FlowModel.load(directory: URL(fileURLWithPath: model), name: "mini")
        let inProcessLoad = Stopwatch.now() - t0
        let settings = SamplingSettings(steps: steps, guidance: 4)
        func inProcess(png: Bool) throws {
            let images = try flow.sample(prompts: [prompt], seeds: [7], settings: settings)
            if png { _ = try flow.pngs(images) }
        }
        try inProcess(png: true)

        // A warm daemon.
        let scratch = NSTemporaryDirectory() + "erudiff-bench-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let warm = try DaemonProcess(binary: daemonPath, dir: scratch + "/warm", model: model, threads: threads)
        defer { warm.kill() }
        try warm.waitReady(timeout: 60)
        let conn = try LineSocket(path: warm.socket)
        _ = try conn.call(request)   // first call: workspaces

        var inproc: [Double] = [], inprocPNG: [Double] = [], kept: [Double] = [], fresh: [Double] = []
        var cpuIn = 0.0, cpuDaemon = 0.0
        for _ in 0..<reps {
            var s = Stopwatch.now()
            try inProcess(png: false)
            inproc.append(Stopwatch.now() - s)
            s = Stopwatch.now()
            let c = Stopwatch.processCPU()
            try inProcess(png: true)
            inprocPNG.append(Stopwatch.now() - s)
            cpuIn += Stopwatch.processCPU() - c
            let dc = warm.cpuSeconds()
            s = Stopwatch.now()
            let reply = try conn.call(request)
            kept.append(Stopwatch.now() - s)
            cpuDaemon += warm.cpuSeconds() - dc
            guard reply.contains("\"result\"") else { throw CommandError(description: "sample failed: \(reply.prefix(300))") }
            s = Stopwatch.now()
            let once = try LineSocket(path: warm.socket)
            _ = try once.call(request)
            once.close()
            fresh.append(Stopwatch.now() - s)
        }
        conn.close()
        let afterSample = warm.memory()
        let matchReply = try LineSocket(path: warm.socket).call(#"{"jsonrpc":"2.0","id":2,"method":"matchDistributions","params":\#(match)}"#,
                                                                timeout: 3600)
        guard matchReply.contains("\"result\"") else { throw CommandError(description: "matchDistributions failed: \(matchReply.prefix(300))") }
        usleep(300_000)   // the worker gives freed memory back once idle
        let afterMatch = warm.memory()
        warm.stop()

        // Cold starts: a fresh daemon loads the model, listens, samples one image and exits.
        var cold: [Double] = [], coldReply: [Double] = []
        for k in 0..<colds {
            let s = Stopwatch.now()
            let d = try DaemonProcess(binary: daemonPath, dir: scratch + "/cold\(k)", model: model, threads: threads)
            try d.waitReady(timeout: 60)
            let reply = try LineSocket(path: d.socket).call(request)
            coldReply.append(Stopwatch.now() - s)
            guard reply.contains("\"result\"") else { throw CommandError(description: "cold sample failed") }
            d.stop()
            cold.append(Stopwatch.now() - s)
        }

        func median(_ x: [Double]) -> Double { let s = x.sorted(); return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2 }
        let mIn = median(inproc), mInPNG = median(inprocPNG), mKept = median(kept), mFresh = median(fresh)
        let mCold = median(cold), mColdReply = median(coldReply)
        let fields: [(String, Double)] = [
            ("steps", Double(steps)), ("reps", Double(reps)), ("threads", Double(threads)),
            ("inprocess_load_ms", inProcessLoad * 1e3),
            ("inprocess_ms", mIn * 1e3), ("inprocess_png_ms", mInPNG * 1e3),
            ("socket_kept_connection_ms", mKept * 1e3), ("socket_fresh_connection_ms", mFresh * 1e3),
            ("overhead_ms", (mKept - mInPNG) * 1e3), ("overhead_fresh_connection_ms", (mFresh - mInPNG) * 1e3),
            ("inprocess_cpu_ms", cpuIn / Double(reps) * 1e3), ("daemon_cpu_ms", cpuDaemon / Double(reps) * 1e3),
            ("cold_start_to_reply_ms", mColdReply * 1e3), ("cold_start_to_exit_ms", mCold * 1e3),
            ("cold_over_warm", mColdReply / mKept),
            ("rss_after_sample_mib", Double(afterSample.rss) / 1048576), ("peak_after_sample_mib", Double(afterSample.peak) / 1048576),
            ("rss_after_match_mib", Double(afterMatch.rss) / 1048576), ("peak_after_match_mib", Double(afterMatch.peak) / 1048576),
        ]
        if json {
            print("{" + fields.map { "\"\($0.0)\": \(String(format: "%.3f", $0.1))" }.joined(separator: ", ") + "}")
            return
        }
        print(String(format: "one image, %d steps, guidance 4, %d threads; medians of %d interleaved calls", steps, threads, reps))
        print(String(format: "  in-process FlowModel.sample          %8.2f ms   (+ PNG: %.2f ms; model load %.0f ms)",
                     mIn * 1e3, mInPNG * 1e3, inProcessLoad * 1e3))
        print(String(format: "  socket, connection kept              %8.2f ms   overhead %+.2f ms over in-process + PNG",
                     mKept * 1e3, (mKept - mInPNG) * 1e3))
        print(String(format: "  socket, new connection per call      %8.2f ms   overhead %+.2f ms", mFresh * 1e3, (mFresh - mInPNG) * 1e3))
        print(String(format: "  CPU per call: in-process + PNG %.2f ms, daemon %.2f ms", cpuIn / Double(reps) * 1e3,
                     cpuDaemon / Double(reps) * 1e3))
        print(String(format: "  cold start (spawn, load, listen, sample): %.0f ms to the reply, %.0f ms to exit; cold/warm %.1f×",
                     mColdReply * 1e3, mCold * 1e3, mColdReply / mKept))
        print(String(format: "  erudiffd resident: after samples %.0f MiB (peak %.0f MiB); after matchDistributions %.0f MiB (peak %.0f MiB)",
                     Double(afterSample.rss) / 1048576, Double(afterSample.peak) / 1048576,
                     Double(afterMatch.rss) / 1048576, Double(afterMatch.peak) / 1048576))
    }
}

/// An erudiffd child process on a private socket and state directory.
final class DaemonProcess {
    let process = Process()
    let socket: String

    init(binary: String, dir: String, model: String, threads: Int) throws {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        socket = dir + "/d.sock"
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["--socket", socket, "--state-dir", dir + "/state", "--model", "mini=" + model,
                             "--threads", String(threads), "--log-level", "warn"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
    }

    func waitReady(timeout: Double) throws {
        let end = Stopwatch.now() + timeout
        while Stopwatch.now() < end {
            guard process.isRunning else { throw CommandError(description: "erudiffd exited with \(process.terminationStatus)") }
            if let s = try? LineSocket(path: socket) { s.close(); return }
            usleep(2000)
        }
        throw CommandError(description: "erudiffd did not listen on \(socket)")
    }

    /// user + system CPU seconds of the daemon so far (/proc/PID/stat).
    func cpuSeconds() -> Double {
        guard let text = try? String(contentsOfFile: "/proc/\(process.processIdentifier)/stat", encoding: .utf8),
              let close = text.lastIndex(of: ")") else { return 0 }
        let f = text[text.index(after: close)...].split(separator: " ")
        guard f.count > 13, let u = Double(f[11]), let s = Double(f[12]) else { return 0 }
        return (u + s) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// VmRSS and VmHWM in bytes.
    func memory() -> (rss: Int, peak: Int) {
        guard let text = try? String(contentsOfFile: "/proc/\(process.processIdentifier)/status", encoding: .utf8) else { return (0, 0) }
        func kB(_ key: String) -> Int {
            text.split(separator: "\n").first { $0.hasPrefix(key + ":") }?.split(separator: " ").compactMap { Int($0) }.first.map { $0 * 1024 } ?? 0
        }
        return (kB("VmRSS"), kB("VmHWM"))
    }

    /// shutdown + exit, and wait for the process.
    func stop() {
        if let s = try? LineSocket(path: socket) {
            _ = try? s.call(#"{"jsonrpc":"2.0","id":"bye","method":"shutdown"}"#)
            try? s.send(#"{"jsonrpc":"2.0","method":"exit"}"#)
            s.close()
        }
        process.waitUntilExit()
    }

    func kill() {
        if process.isRunning { process.terminate(); process.waitUntilExit() }
    }
}

/// A Unix-socket client speaking one JSON message per line.
final class LineSocket {
    private let fd: Int32
    private var buffer: [UInt8] = []

    init(path: String) throws {
        fd = Glibc.socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw CommandError(description: "socket() failed") }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else { throw CommandError(description: "socket path too long") }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (k, b) in bytes.enumerated() { raw[k] = b }
        }
        let r = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard r == 0 else {
            Glibc.close(fd)
            throw CommandError(description: "cannot connect to \(path)")
        }
    }

    func send(_ line: String) throws {
        let data = Array((line + "\n").utf8)
        var off = 0
        while off < data.count {
            let n = data[off...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            guard n > 0 else { throw CommandError(description: "write failed") }
            off += n
        }
    }

    /// Sends a request and returns the next line that is not a notification.
    func call(_ line: String, timeout: Double = 600) throws -> String {
        try send(line)
        let end = Stopwatch.now() + timeout
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while Stopwatch.now() < end {
            if let nl = buffer.firstIndex(of: 10) {
                let text = String(decoding: buffer[..<nl], as: UTF8.self)
                buffer.removeSubrange(...nl)
                if text.hasPrefix(#"{"jsonrpc":"2.0","method":"#) { continue }
                return text
            }
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            guard n > 0 else { throw CommandError(description: "the daemon closed the connection") }
            buffer.append(contentsOf: chunk[..<n])
        }
        throw CommandError(description: "no reply in \(timeout) s")
    }

    func close() { Glibc.close(fd) }
}
