import EruDiff
import Foundation
import RPCServer

/// An engine procedure (DK-DM, NO-RL, an evaluation) run as a daemon job: each `Procedure.next()` is
/// one unit, so its units interleave with other jobs and it stops between any two of them.
///
/// The procedure is made on the worker at the first unit (procedures read the model, which belongs
/// to the worker). A training job first claims the model's adapter (another training job on the same
/// model answers busy), counts its training steps, checkpoints the adapter every
/// `--checkpoint-every` steps and once more when it ends — done, cancelled, shut down or failed — so
/// a cancelled run keeps the steps it took and says so in the error's `data`.
final class ProcedureJob<P: Procedure>: Job {
    let title: String
    let method: String
    let model: EngineModel
    let trains: Bool
    let checkpointEvery: Int
    private let make: (EngineModel) throws -> P
    private let finish: (P.Output, ProcedureJob<P>) throws -> JSON
    private(set) var procedure: P?
    /// Training steps this job took.
    private(set) var steps = 0
    private var jobID = 0
    let admitted = Date()
    private var lastSaved: String?

    init(title: String, method: String, model: EngineModel, trains: Bool, checkpointEvery: Int,
         make: @escaping (EngineModel) throws -> P, finish: @escaping (P.Output, ProcedureJob<P>) throws -> JSON) {
        self.title = title
        self.method = method
        self.model = model
        self.trains = trains
        self.checkpointEvery = checkpointEvery
        self.make = make
        self.finish = finish
    }

    var elapsedMs: Int64 { Int64(Date().timeIntervalSince(admitted) * 1000) }

    func step(_ context: JobContext) throws -> JobStep {
        if procedure == nil {
            jobID = context.id
            if trains { try model.claim(job: context.id, method: method) }
            procedure = try make(model)
        }
        let p = procedure!
        let progress = try p.next()
        if trains, let pr = progress, pr.stage == "training", pr.loss != nil {
            steps += 1
            try model.trained(checkpointEvery: checkpointEvery)
        }
        if p.isFinished {
            guard let out = p.output else { throw RPCError.internalError("\(method) finished without a result") }
            if trains {
                lastSaved = try model.saveCheckpoint()
                model.release(job: context.id)
            }
            return .done(try finish(out, self))
        }
        return .progress(fraction: progress?.fraction ?? 0, message: progress.map(Self.describe))
    }

    static func describe(_ p: ProcedureProgress) -> String {
        var s = "\(p.stage) \(p.done)/\(p.total)"
        if let l = p.loss { s += String(format: ", loss %.5f", l) }
        return s
    }

    func stopped(_ context: JobContext, reason: JobStopReason) {
        guard trains else { return }
        if procedure != nil, model.trainer?.job == context.id {
            do { lastSaved = try model.saveCheckpoint() } catch {
                Log.error("job \(context.id) (\(method)): checkpoint after stop failed: \(error)")
            }
        }
        model.release(job: context.id)
    }

    func stopData(reason: JobStopReason) -> JSON? {
        guard trains else { return nil }
        var o: [String: JSON] = ["steps": .int(Int64(steps)), "adapterSteps": .int(Int64(model.adapterSteps))]
        if let lastSaved { o["checkpoint"] = .string(lastSaved) }
        o["note"] = .string("the adapter of model \(model.name) keeps the \(steps) training step(s) this request took"
                            + (lastSaved.map { "; checkpointed to \($0)" } ?? ""))
        return .object(o)
    }

    /// A training job's result: `fields` plus what every training method reports — the adapter's
    /// total steps, compute and wall time, and the checkpoint written at the end.
    func trainingResult(_ fields: [String: JSON], computeSeconds: Double) -> JSON {
        var out = fields
        out["adapterSteps"] = .int(Int64(model.adapterSteps))
        out["computeMs"] = .int(Int64(computeSeconds * 1000))
        out["elapsedMs"] = .int(elapsedMs)
        if let c = lastSaved { out["checkpoint"] = .string(c) }
        return .object(out)
    }
}
