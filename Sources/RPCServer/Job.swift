import Foundation

/// What one unit of a job produced.
public enum JobStep: Sendable {
    /// More units to come; `fraction` in 0...1 of the whole job, `message` for `$/progress` reports.
    case progress(fraction: Double, message: String?)
    /// The job is complete; this is the JSON-RPC result.
    case done(JSON)
}

/// Why a job stopped before it was done.
public enum JobStopReason: Sendable {
    case cancelled      // `$/cancelRequest`, or its client disconnected
    case shutdown       // the server is shutting down
    case failed         // a unit threw
}

/// Long work split into units (a sampling step, a training step). The scheduler's single worker thread
/// calls `step` once per unit and interleaves the units of all admitted jobs, sharing its time fairly, so a short job
/// is never stuck behind a long one; between units it checks the job's cancellation flag. All methods
/// run on the worker thread, one at a time, never concurrently with another job's methods.
public protocol Job: AnyObject {
    /// Title of the `$/progress` begin notification ("sample", "matchDistributions: 200 steps").
    var title: String { get }
    /// Runs one unit. Long units may poll `context.isCancelled` and stop early by throwing
    /// `RPCError.requestCancelled`.
    func step(_ context: JobContext) throws -> JobStep
    /// True for jobs with state worth keeping (training): `checkpoint` is then called every
    /// `--checkpoint-every` units and when the server shuts down.
    var isCheckpointable: Bool { get }
    /// Saves the job's state (atomically: it may be the last one written before the process dies).
    func checkpoint(_ context: JobContext) throws
    /// Called once if a job that has run at least one unit stops before `done` (cancelled, shut down,
    /// or a unit threw), so it can release resources or keep the work done so far. A job cancelled
    /// before its first unit is dropped without this call.
    func stopped(_ context: JobContext, reason: JobStopReason)
    /// The `data` of the error that answers a job stopped after it started (`-32800` or `-32003`), e.g.
    /// `{"steps": 40, "checkpoint": …}` for a training job that keeps what it learned. Called once,
    /// after `stopped`.
    func stopData(reason: JobStopReason) -> JSON?
}

extension Job {
    public var isCheckpointable: Bool { false }
    public func checkpoint(_ context: JobContext) throws {}
    public func stopped(_ context: JobContext, reason: JobStopReason) {}
    public func stopData(reason: JobStopReason) -> JSON? { nil }
}

/// What a job sees of the server while it runs on the worker thread; whatever else it needs (models,
/// files) its method gave it when it made the job.
public final class JobContext: @unchecked Sendable {
    /// Server-wide job number (shown by `status`).
    public let id: Int
    /// Units completed so far.
    public internal(set) var units = 0
    private let cancelFlag: () -> Bool

    init(id: Int, cancelFlag: @escaping () -> Bool) {
        self.id = id
        self.cancelFlag = cancelFlag
    }

    /// True once `$/cancelRequest`, a disconnect or shutdown asked this job to stop.
    public var isCancelled: Bool { cancelFlag() }
}

/// A job built from closures, for small methods that do not need a type of their own.
public final class ClosureJob: Job {
    public let title: String
    private let body: (JobContext) throws -> JobStep

    public init(title: String, step: @escaping (JobContext) throws -> JobStep) {
        self.title = title
        self.body = step
    }

    public func step(_ context: JobContext) throws -> JobStep { try body(context) }
}
