import EruDiff
import Foundation
import Models
import Tensors

/// `erudiff-bench textencoder [--threads N] [--weights PATH] [--repeats N] [--serve]`: latency of
/// all-MiniLM-L6-v2 encoding (tokenization included, no cache) for one prompt and for a batch of 16.
///
/// With `--serve` it answers timing requests on stdin so that `scripts/bench-textencoder.py` can
/// interleave our rounds with transformers' rounds in one run (the machine is shared and noisy, so only
/// side-by-side ratios mean anything). Protocol, one line each way:
/// `time <repeats> <batch> <JSON array of prompts>` → `{"seconds": [...]}` where call i encodes
/// `batch` prompts taken cyclically from position i·batch; `quit` ends.
enum TextEncoderBench: BenchCommand {
    static let name = "textencoder"
    static let summary = "all-MiniLM-L6-v2 encoding latency, batch 1 and 16 (vs transformers: scripts/bench-textencoder.py)"

    static let defaultPrompts = [
        "the flag of Japan", "a red circle on a white background", "an iron nail left out in the rain for a year",
        "a brown thin rectangle on a white background", "a stop sign", "a red octagon on a white background",
        "a copper roof after a century of rain", "the sky at noon", "the sky at midnight", "a ripe banana",
        "a small blue star in the top left corner on a light blue background", "the flame of burning sodium",
        "litmus paper dipped in lemon juice", "a full moon", "a maple leaf in autumn",
        "a large yellow crescent on a black background",
    ]

    static func run(arguments: [String]) throws {
        let f = try Flags(arguments, valued: ["threads", "repeats", "weights"], boolean: ["serve"])
        let threads = try f.positive("threads") ?? 2, repeats = try f.positive("repeats") ?? 30, serve = f.has("serve"), weights = f.string("weights")
        BLAS.setThreads(threads)
        Parallel.threads = threads
        let encoder = try TextEncoder(path: weights)
        _ = try encoder.encode(defaultPrompts)  // warm up: page in the weights, size the scratch

        if serve {
            print("ready threads=\(threads)")
            fflush(stdout)
            while let line = readLine() {
                if line == "quit" { break }
                let parts = line.split(separator: " ", maxSplits: 3).map(String.init)
                guard parts.count == 4, parts[0] == "time", let reps = Int(parts[1]), let batch = Int(parts[2]),
                      reps > 0, batch > 0,
                      let prompts = (try? JSONSerialization.jsonObject(with: Data(parts[3].utf8))) as? [String],
                      !prompts.isEmpty else {
                    print("{\"error\": \"bad request\"}")
                    fflush(stdout)
                    continue
                }
                let seconds = try time(encoder, prompts: prompts, batch: batch, repeats: reps)
                let list = seconds.map { String(format: "%.9f", $0) }.joined(separator: ",")
                print("{\"seconds\": [\(list)]}")
                fflush(stdout)
            }
            return
        }

        print("threads: \(threads) (OpenBLAS \(BLAS.threads)); load average: \(loadAverage())")
        for batch in [1, 16] {
            let s = try time(encoder, prompts: defaultPrompts, batch: batch, repeats: repeats).sorted()
            print(String(format: "batch %2d: median %.3f ms, min %.3f ms, max %.3f ms over %d calls",
                         batch, s[s.count / 2] * 1e3, s[0] * 1e3, s[s.count - 1] * 1e3, s.count))
        }
        print("load average after: \(loadAverage())")
    }

    /// Seconds of each of `repeats` calls encoding `batch` prompts (tokenization included, no cache).
    static func time(_ encoder: TextEncoder, prompts: [String], batch: Int, repeats: Int) throws -> [Double] {
        var seconds: [Double] = []
        seconds.reserveCapacity(repeats)
        for r in 0..<repeats {
            let chunk = (0..<batch).map { prompts[(r * batch + $0) % prompts.count] }
            let t0 = Stopwatch.now()
            let e = try encoder.encode(chunk)
            seconds.append(Stopwatch.now() - t0)
            if e.pooled.count == 0 { print("empty result") }  // keeps the work observable
        }
        return seconds
    }

    static func loadAverage() -> String {
        (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?
            .split(separator: " ").prefix(3).joined(separator: " ") ?? "n/a"
    }
}
