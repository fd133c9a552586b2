import Foundation

/// Runs jobs on ONE worker thread (the numeric code brings its own threads; two jobs at once would only
/// fight over the cores), one unit at a time, sharing the worker's time between all admitted jobs:
///
/// - Jobs are *short* until they have used `longAfter` seconds of worker time (2 s), then *long*.
/// - While both kinds wait, long jobs together get `longShare` of the worker's time (default half)
///   and short jobs the rest, counted in worker seconds: a flood of short jobs cannot starve a long
///   training run, and a long run cannot hold up a one-image `sample`. A kind with nothing to run lends
///   its share to the other and earns no credit meanwhile.
/// - Within a kind, the next unit is the one of the job that has used the least worker time so far
///   (a job admitted later, or just turned long, starts level with the least served one of its
///   kind), so a one-image `sample` of 25 ms steps runs many steps for each 600 ms step of another
///   job, and units of equal cost alternate round-robin.
///
/// Cancelled jobs are stopped first. The loop thread submits and cancels; the worker reports through
/// a locked event list that the loop drains completely whenever `wake` fires (`uv_async_send`
/// coalesces several wakes into one callback).
public final class Scheduler: @unchecked Sendable {
    public enum Event {
        case progress(job: Int, fraction: Double, message: String?)
        /// The job returned `done` (success) or a unit threw (failure).
        case finished(job: Int, Result<JSON, Error>)
        /// The job stopped early because it was cancelled or the server is shutting down; `data` is
        /// what the job says about the work it kept (`Job.stopData`), nil if it had not started.
        case stopped(job: Int, JobStopReason, data: JSON?)
        /// A task given to `perform` completed.
        case task(id: Int, Result<JSON, Error>)
    }

    public enum CancelOutcome: Equatable {
        case notFound
        /// It had not started: removed at once, no `stopped` event follows.
        case removed
        /// It has started: it stops at its next unit boundary and a `stopped` event follows.
        case flagged
    }

    private final class Entry {
        let id: Int
        let method: String
        let job: Job
        var context: JobContext!
        var cancelled: JobStopReason?
        var started = false
        /// Worker seconds used, offset so that it starts level with the least served job of its kind.
        var served = 0.0
        /// Worker seconds used.
        var used = 0.0
        var isLong = false
        var fraction = 0.0
        var message: String?
        init(id: Int, method: String, job: Job) {
            self.id = id
            self.method = method
            self.job = job
        }
    }

    public let maxJobs: Int
    public let checkpointEvery: Int
    /// Share of the worker's time that long jobs keep while short ones wait (0 < longShare < 1).
    public let longShare: Double
    /// Worker seconds after which a job counts as long.
    public let longAfter: Double
    /// Worker seconds each kind (short, long) was given, divided by its share: the kind behind runs next.
    private var kindClock = [0.0, 0.0]

    private let cond = NSCondition()
    private var queue: [Entry] = []          // admitted jobs in order of admission (the running one excluded)
    private var current: Entry?
    private var tasks: [(id: Int, body: () throws -> JSON)] = []
    private var events: [Event] = []
    private var nextJobID = 1
    private var nextTaskID = 1
    private var stopping = false
    private var exited = false
    private var trimNeeded = false
    private var taskRunning = false
    private var lastRefresh = Date.distantPast
    private var thread: Thread?
    private let afterWork: () -> Void
    private let wake: () -> Void

    /// `afterWork` runs on the worker after tasks and stopped jobs, and after units at most every 20 ms
    /// (`ServerHooks.afterWork`); `wake` is called from the worker thread after events were added
    /// (thread-safe, e.g. uv_async_send).
    public init(maxJobs: Int, checkpointEvery: Int, longShare: Double = 0.5, longAfter: Double = 2,
                afterWork: @escaping () -> Void = {}, wake: @escaping () -> Void) {
        precondition(longShare > 0 && longShare < 1, "longShare must lie in (0, 1)")
        self.maxJobs = maxJobs
        self.checkpointEvery = checkpointEvery
        self.longShare = longShare
        self.longAfter = longAfter
        self.afterWork = afterWork
        self.wake = wake
    }

    /// Starts the worker thread.
    public func start() {
        let t = Thread { [self] in self.workerLoop() }
        t.name = "rpc-worker"
        t.stackSize = 64 << 20
        thread = t
        t.start()
    }

    // MARK: loop-thread API

    /// Admits a job; throws `-32001 busy` when `maxJobs` are already admitted, `-32003` when stopping.
    public func submit(method: String, job: Job) throws -> Int {
        cond.lock()
        defer { cond.unlock() }
        guard !stopping else { throw RPCError.shuttingDown() }
        let admitted = queue.count + (current == nil ? 0 : 1)
        guard admitted < maxJobs else {
            throw RPCError.busy("\(admitted) jobs admitted, the limit is \(maxJobs) (--max-queue); retry later")
        }
        let e = Entry(id: nextJobID, method: method, job: job)
        nextJobID += 1
        e.context = JobContext(id: e.id) { [unowned self, unowned e] in
            self.cond.lock()
            defer { self.cond.unlock() }
            return e.cancelled != nil
        }
        e.served = leastServed(long: false) ?? 0
        queue.append(e)
        cond.signal()
        return e.id
    }

    /// Asks a job to stop.
    public func cancel(_ id: Int, reason: JobStopReason = .cancelled) -> CancelOutcome {
        cond.lock()
        defer { cond.unlock() }
        if let e = current, e.id == id {
            if e.cancelled == nil { e.cancelled = reason }
            return .flagged
        }
        guard let i = queue.firstIndex(where: { $0.id == id }) else { return .notFound }
        let e = queue[i]
        if !e.started {
            queue.remove(at: i)
            return .removed
        }
        if e.cancelled == nil { e.cancelled = reason }
        queue.remove(at: i)
        queue.insert(e, at: 0)     // let the worker stop it before anything else
        cond.signal()
        return .flagged
    }

    /// Runs `body` on the worker at the next unit boundary, ahead of all jobs; its result comes back
    /// as a `.task` event with the returned id.
    public func perform(_ body: @escaping () throws -> JSON) -> Int {
        cond.lock()
        defer { cond.unlock() }
        let id = nextTaskID
        nextTaskID += 1
        tasks.append((id, body))
        cond.signal()
        return id
    }

    /// Takes every pending event (loop thread, from the wake callback).
    public func drain() -> [Event] {
        cond.lock()
        defer { cond.unlock() }
        let out = events
        events.removeAll(keepingCapacity: true)
        return out
    }

    /// For `status`: every admitted job and the number that have not started yet. Never waits for a
    /// unit: the worker holds the lock only between units.
    public func snapshot() -> (jobs: [JSON], waiting: Int) {
        cond.lock()
        defer { cond.unlock() }
        var all = queue
        if let c = current { all.insert(c, at: 0) }
        let jobs: [JSON] = all.sorted { $0.id < $1.id }.map { e in
            var o: [String: JSON] = [
                "id": .int(Int64(e.id)), "method": .string(e.method), "progress": .double(e.fraction),
                "state": .string(e === current ? "running" : e.started ? "paused" : "queued"),
                "units": .int(Int64(e.context.units)),
                "workerMs": .int(Int64(e.used * 1000)), "kind": .string(e.isLong ? "long" : "short"),
            ]
            if let m = e.message { o["message"] = .string(m) }
            return .object(o)
        }
        return (jobs, all.filter { !$0.started }.count)
    }

    /// No job is admitted (running, paused or queued) and no task waits: the worker has nothing to do.
    public var isIdle: Bool {
        cond.lock()
        defer { cond.unlock() }
        return current == nil && queue.isEmpty && tasks.isEmpty && !taskRunning
    }

    /// Ids of all admitted jobs.
    public var jobIDs: [Int] {
        cond.lock()
        defer { cond.unlock() }
        return (current.map { [$0.id] } ?? []) + queue.map(\.id)
    }

    /// Checkpoints every started checkpointable job (call from a `perform` task: worker thread).
    public func checkpointJobs() -> [(Int, Error)] {
        cond.lock()
        let started = queue.filter { $0.started && $0.cancelled == nil && $0.job.isCheckpointable }
        cond.unlock()
        var failures: [(Int, Error)] = []
        for e in started {
            do { try e.job.checkpoint(e.context) } catch { failures.append((e.id, error)) }
        }
        return failures
    }

    /// Flags every admitted job to stop with `reason` (their `stopped` events follow, also for jobs that
    /// had not started). Safe from any thread; called from the shutdown task so that no unit runs
    /// between the last checkpoint and the stop.
    public func cancelAll(reason: JobStopReason) {
        cond.lock()
        for e in queue where e.cancelled == nil { e.cancelled = reason }
        if let c = current, c.cancelled == nil { c.cancelled = reason }
        cond.signal()
        cond.unlock()
    }

    /// Stops the worker: every admitted job is stopped with reason `.shutdown` (their `stopped` events
    /// follow), then the thread ends. Blocks until it has (at most the current unit).
    public func stop() {
        cancelAll(reason: .shutdown)
        cond.lock()
        stopping = true
        cond.broadcast()
        while !exited && thread != nil { cond.wait() }
        cond.unlock()
    }

    // MARK: worker thread

    private func emit(_ e: Event) {   // lock held
        events.append(e)
        wake()
    }

    /// The least `served` among the admitted jobs of a kind (lock held).
    private func leastServed(long: Bool) -> Double? {
        var all = queue.filter { $0.isLong == long }
        if let c = current, c.isLong == long { all.append(c) }
        return all.map(\.served).min()
    }

    /// The entry to run next (lock held, queue not empty): a cancelled one first; else of the kind whose
    /// clock is behind (the only kind if one has nothing to run: the idle one's clock catches up, so it
    /// banks no credit), the least served (the earliest admitted among equals).
    private func nextIndex() -> Int {
        if let i = queue.firstIndex(where: { $0.cancelled != nil }) { return i }
        let hasShort = queue.contains { !$0.isLong }, hasLong = queue.contains { $0.isLong }
        let long: Bool
        if hasShort && hasLong {
            long = kindClock[1] < kindClock[0]
        } else {
            long = hasLong
            let active = long ? 1 : 0
            kindClock[1 - active] = max(kindClock[1 - active], kindClock[active])
        }
        var best: Int?
        for i in queue.indices where queue[i].isLong == long {
            if best == nil || queue[i].served < queue[best!].served { best = i }
        }
        return best!
    }

    private func workerLoop() {
        cond.lock()
        while true {
            if !tasks.isEmpty {
                let t = tasks.removeFirst()
                taskRunning = true
                cond.unlock()
                let r = Result { try t.body() }
                afterWork()
                cond.lock()
                taskRunning = false
                emit(.task(id: t.id, r))
                continue
            }
            if stopping {
                for e in queue where e.cancelled == nil { e.cancelled = .shutdown }
                if queue.isEmpty { break }
            }
            guard !queue.isEmpty else {
                if trimNeeded {
                    // Jobs free their workspaces when they end; give that memory back to the system
                    // while idle, so the resident size shows what stays, not the last job's work memory.
                    trimNeeded = false
                    cond.unlock()
                    Memory.trim()
                    cond.lock()
                    continue
                }
                cond.wait()
                continue
            }
            let e = queue.remove(at: nextIndex())
            if let reason = e.cancelled {
                var data: JSON?
                if e.started {
                    // Shown as running until its final checkpoint is written and `afterWork` has
                    // run: a client that sees no jobs may rely on what the job kept being saved.
                    current = e
                    cond.unlock()
                    e.job.stopped(e.context, reason: reason)
                    data = e.job.stopData(reason: reason)
                    afterWork()
                    cond.lock()
                    current = nil
                }
                emit(.stopped(job: e.id, reason, data: data))
                continue
            }
            e.started = true
            current = e
            cond.unlock()

            let unitStart = Date()
            let result = Result { try e.job.step(e.context) }
            cond.lock()
            e.context.units += 1
            let units = e.context.units
            // A unit that threw RequestCancelled after a cancel was asked counts as a cancellation.
            var cancelledInside: JobStopReason?
            if case .failure(let error) = result, (error as? RPCError)?.code == RPCError.requestCancelledCode {
                cancelledInside = e.cancelled
            }
            cond.unlock()
            if case .success(.progress) = result, e.job.isCheckpointable, units % checkpointEvery == 0 {
                do { try e.job.checkpoint(e.context) } catch {
                    Log.error("job \(e.id) (\(e.method)): checkpoint failed: \(error)")
                }
            }
            var stopData: JSON?
            if case .failure = result {
                e.job.stopped(e.context, reason: cancelledInside ?? .failed)
                if let reason = cancelledInside { stopData = e.job.stopData(reason: reason) }
            }
            // `afterWork` (what `status` reads): after a job's last unit, else at most every 20 ms (a
            // unit can take a millisecond; running the hook after each would show).
            let now = Date()
            if case .success(.progress) = result, now.timeIntervalSince(lastRefresh) < 0.02 {} else {
                afterWork()
                lastRefresh = now
            }

            // The job is charged the unit and what followed from it (checkpoint, hook): all the worker
            // time it cost, so the shares hold in wall-clock time.
            let unitSeconds = Date().timeIntervalSince(unitStart)
            cond.lock()
            e.served += unitSeconds
            e.used += unitSeconds
            kindClock[e.isLong ? 1 : 0] += unitSeconds / (e.isLong ? longShare : 1 - longShare)
            if !e.isLong && e.used >= longAfter {
                // Now long: level with the least served long job, so it neither jumps ahead of them
                // nor waits for the time they had before it.
                let level = leastServed(long: true)
                e.isLong = true
                e.served = max(e.served, level ?? e.served)
            }
            current = nil
            trimNeeded = true
            switch result {
            case .success(.progress(let fraction, let message)):
                e.fraction = fraction.isFinite ? min(max(fraction, 0), 1) : 0
                e.message = message
                emit(.progress(job: e.id, fraction: e.fraction, message: message))
                if e.cancelled != nil { queue.insert(e, at: 0) } else { queue.append(e) }
            case .success(.done(let value)):
                e.fraction = 1
                emit(.finished(job: e.id, .success(value)))
            case .failure(let error):
                if let reason = cancelledInside {
                    emit(.stopped(job: e.id, reason, data: stopData))
                } else {
                    emit(.finished(job: e.id, .failure(error)))
                }
            }
        }
        exited = true
        cond.broadcast()
        cond.unlock()
    }
}
