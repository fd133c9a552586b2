import Foundation

/// One `erudiff-bench` subcommand.
protocol BenchCommand {
    static var name: String { get }
    static var summary: String { get }
    static func run(arguments: [String]) throws
}

/// Wall-clock timing helpers.
enum Stopwatch {
    static func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) * 1e-9 }

    /// CPU seconds used by the whole process so far (all threads). Unlike wall time it does not grow
    /// while other processes hold the cores, so on a crowded machine it shows the work a call costs.
    static func processCPU() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }

    /// Best wall seconds and best process-CPU seconds per call of `body` (each minimised separately)
    /// over repetitions lasting about `budget` wall seconds (at least `minReps`), without warm-up.
    static func bestWallAndCPU(budget: Double, minReps: Int, _ body: () -> Void) -> (wall: Double, cpu: Double) {
        var wall = Double.infinity, cpu = Double.infinity, spent = 0.0, reps = 0
        while reps < minReps || spent < budget {
            let t0 = now(), c0 = processCPU()
            body()
            let dt = now() - t0, dc = processCPU() - c0
            wall = min(wall, dt); cpu = min(cpu, dc); spent += dt; reps += 1
            if reps >= 1000 { break }
        }
        return (wall, cpu)
    }

    /// Best (smallest) seconds per call of `body` over repetitions lasting about `budget` seconds in all
    /// (at least `minReps`), after one warm-up call.
    static func best(budget: Double = 0.5, minReps: Int = 3, _ body: () -> Void) -> Double {
        body()
        var best = Double.infinity, spent = 0.0, reps = 0
        while reps < minReps || spent < budget {
            let t0 = now()
            body()
            let dt = now() - t0
            best = min(best, dt); spent += dt; reps += 1
            if reps >= 1000 { break }
        }
        return best
    }
}
