import Foundation

/// Diagnostics for test suites, registered only when one asks for them (`--enable-test-methods`), so
/// that scheduling, progress, cancellation, interleaving and checkpoints can be tested on the real
/// server without any method of the application's. No public contract lists them.
extension MethodTable {
    /// `save(name, data)` writes the checkpoint of a `test/sleep` that named one, atomically; the
    /// application decides where.
    public func registerTestMethods(checkpoint save: @escaping (_ name: String, _ data: Data) throws -> Void) {
        // test/sleep {units, unitMs, spin?, failAt?, checkpoint?}: a job of `units` units that each sleep
        // `unitMs` milliseconds (or keep a core busy that long with `spin`, like model work would). `failAt` makes unit n throw; `checkpoint` names a state file that
        // records the units done, written at every checkpoint.
        register("test/sleep", .job { _, params in
            let units = try params.int("units", default: 10, in: 1...1_000_000)
            let unitMs = try params.int("unitMs", default: 10, in: 0...60_000)
            let spin = try params.bool("spin", default: false)
            let failAt = try params.optionalInt("failAt", in: 1...1_000_000)
            let checkpoint = try params.optionalString("checkpoint")
            if let checkpoint, checkpoint.isEmpty || checkpoint.contains("/") || checkpoint.hasPrefix(".") {
                throw RPCError.invalidParams("\"checkpoint\" must be a plain file name, got \"\(checkpoint)\"")
            }
            return SleepJob(units: units, unitMs: unitMs, spin: spin, failAt: failAt,
                            checkpoint: checkpoint.map { name in { try save(name, $0) } })
        })

        // test/echo {value, holdMs?}: answers `value` on the loop thread (framing and size tests);
        // `holdMs` keeps the loop busy that long first (tests of the loop's own time in `status`).
        register("test/echo", .immediate { _, params in
            let hold = try params.int("holdMs", default: 0, in: 0...1000)
            let until = DispatchTime.now().uptimeNanoseconds + UInt64(hold) * 1_000_000
            while DispatchTime.now().uptimeNanoseconds < until {}
            return params.raw("value") ?? .null
        })
    }
}

/// The unit job behind `test/sleep`.
final class SleepJob: Job {
    let units: Int
    let unitMs: Int
    let spin: Bool
    let failAt: Int?
    let save: ((Data) throws -> Void)?
    private var done = 0
    private var checkpoints = 0
    private let started = Date()

    init(units: Int, unitMs: Int, spin: Bool, failAt: Int?, checkpoint save: ((Data) throws -> Void)?) {
        self.units = units
        self.unitMs = unitMs
        self.spin = spin
        self.failAt = failAt
        self.save = save
    }

    var title: String { "test/sleep: \(units) × \(unitMs) ms" }
    var isCheckpointable: Bool { save != nil }

    func step(_ context: JobContext) throws -> JobStep {
        if spin {
            let end = Date().addingTimeInterval(Double(unitMs) / 1000)
            var x = 0.0
            while Date() < end { for i in 0..<1000 { x += sqrt(Double(i) + x) } }
            if x.isNaN { Log.debug("unreachable") }
        } else {
            // Sleeps in slices and polls the cancellation flag, like a long unit of real work should.
            var left = unitMs
            while left > 0 {
                let slice = min(left, 10)
                usleep(useconds_t(slice) * 1000)
                left -= slice
                if context.isCancelled { throw RPCError.requestCancelled }
            }
        }
        done += 1
        if let failAt, done == failAt {
            throw RPCError.internalError("test/sleep failed at unit \(done) as asked (failAt)")
        }
        if done < units {
            return .progress(fraction: Double(done) / Double(units), message: "unit \(done) of \(units)")
        }
        return .done([
            "units": .int(Int64(done)),
            "elapsedMs": .int(Int64(Date().timeIntervalSince(started) * 1000)),
            "checkpoints": .int(Int64(checkpoints)),
        ])
    }

    func checkpoint(_ context: JobContext) throws {
        guard let save else { return }
        let record: JSON = ["job": .int(Int64(context.id)), "units": .int(Int64(done)), "of": .int(Int64(units))]
        try save(Data(record.serialized()))
        checkpoints += 1
    }
}
