/// Where a unit-driven procedure stands after its last unit.
public struct ProcedureProgress: Equatable, Sendable, CustomStringConvertible {
    /// The current stage ("anchors", "training", "sampling", …).
    public var stage: String
    /// Units done and planned in this stage.
    public var done: Int
    public var total: Int
    /// Share of the whole procedure done, in [0, 1] (an estimate where later stages are not sized yet).
    public var fraction: Double
    /// The last training loss, when the unit was a training step.
    public var loss: Float?

    public init(stage: String, done: Int, total: Int, fraction: Double, loss: Float? = nil) {
        self.stage = stage; self.done = done; self.total = total
        self.fraction = min(max(fraction, 0), 1); self.loss = loss
    }

    public var description: String {
        var s = "\(stage) \(done)/\(total) (\(Int((fraction * 100).rounded()))%)"
        if let loss { s += " loss \(loss)" }
        return s
    }
}

/// A long computation split into short units (a sampling step of a chunk of images, a training
/// step, a verification pass), so that a caller — the daemon's scheduler, a command-line loop, a test
/// — can interleave it with other work, report progress and stop it between any two units.
///
/// Nothing happens in `init` beyond validation and bookkeeping; every unit of real work runs in
/// `next()`. A procedure is not thread-safe: one caller drives it.
public protocol Procedure: AnyObject {
    associatedtype Output
    /// Runs one unit and says where the procedure stands; nil once it has finished (and then does
    /// nothing).
    func next() throws -> ProcedureProgress?
    /// Whether every unit has run.
    var isFinished: Bool { get }
    /// The result, once finished.
    var output: Output? { get }
}

extension Procedure {
    /// Runs every remaining unit, calling `progress` after each, and returns the result.
    @discardableResult
    public func run(progress: ((ProcedureProgress) -> Void)? = nil) throws -> Output {
        while let p = try next() { progress?(p) }
        guard let out = output else { throw EruDiffError.notFinished(String(describing: Self.self)) }
        return out
    }
}
