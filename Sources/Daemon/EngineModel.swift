import EruDiff
import Foundation
import Models
import RPCServer
import Tensors

/// A flow model resident in the daemon: the engine's `FlowModel` plus what the daemon keeps about its
/// LoRA adapter — how many training steps it has taken, whether they are saved, where its checkpoint
/// is, and which training job owns it now — and the anchor banks that evaluations and DK-DM share.
///
/// Used only on the worker thread (jobs, the loader, `ModelRegistry.refresh`), like the model itself.
public final class EngineModel {
    public let name: String
    /// The model folder it was loaded from.
    public let path: String
    public let flow: FlowModel
    let checkpoints: AdapterCheckpoints

    /// Training steps the current adapter has taken over all runs (kept in its checkpoint).
    private(set) var adapterSteps = 0
    /// Whether the adapter differs from its last checkpoint.
    private(set) var unsaved = false
    /// Steps taken since the last checkpoint.
    private(set) var unsavedSteps = 0
    /// The checkpoint the adapter was restored from at load, if any.
    private(set) var restoredFrom: String?
    private(set) var lastCheckpoint: (path: String, steps: Int, date: Date)?
    /// The training job that owns the adapter now (`matchDistributions` or `rlStep`), if any.
    private(set) var trainer: (job: Int, method: String)?
    private var banks: [AnchorBank] = []

    init(name: String, path: String, flow: FlowModel, checkpoints: AdapterCheckpoints) {
        self.name = name
        self.path = path
        self.flow = flow
        self.checkpoints = checkpoints
    }

    /// Loads the model folder at `path` (with the MiniLM text encoder at `minilm`, or found by
    /// `MiniLMLocator`) and restores the adapter of its last checkpoint under `state`, if any.
    static func load(name: String, path: String, state: StateDirectory, minilm: String?) throws -> EngineModel {
        let flow = try FlowModel.load(directory: URL(fileURLWithPath: path), name: name, minilm: minilm)
        let model = EngineModel(name: name, path: path, flow: flow,
                                checkpoints: AdapterCheckpoints(state: state, model: name))
        model.restore()
        return model
    }

    // MARK: What `status` shows and the registry saves

    /// Resident memory: weights, adapter, workspaces, text encoder, anchors.
    public var bytes: Int { flow.memory.total + banks.reduce(0) { $0 + $1.bytes } }

    /// The adapter's state for `status` (rank, steps, checkpoint, training job…), or null.
    public var adapter: JSON {
        guard let a = flow.adapter else { return .null }
        var o: [String: JSON] = [
            "rank": .int(Int64(a.rank)), "alpha": .double(Double(a.alpha)), "enabled": .bool(a.enabled),
            "steps": .int(Int64(adapterSteps)), "parameters": .int(Int64(a.parameterCount)),
            "modules": .int(Int64(a.modules.count)), "unsavedSteps": .int(Int64(unsavedSteps)),
            "saved": .bool(!unsaved),
        ]
        if let c = lastCheckpoint {
            o["checkpoint"] = ["path": .string(c.path), "steps": .int(Int64(c.steps)),
                               "at": .string(ISO8601DateFormatter().string(from: c.date))]
        }
        if let r = restoredFrom { o["restoredFrom"] = .string(r) }
        if let t = trainer { o["training"] = ["job": .int(Int64(t.job)), "method": .string(t.method)] }
        return .object(o)
    }

    /// More members of the model's `status` entry (path, memory breakdown, parameters, image size).
    public var details: [String: JSON] {
        let m = flow.memory
        return [
            "path": .string(path),
            "memory": ["weights": .int(Int64(m.weights)), "adapter": .int(Int64(m.adapter)),
                       "workspaces": .int(Int64(m.workspaces)), "textEncoder": .int(Int64(m.textEncoder)),
                       "anchors": .int(Int64(banks.reduce(0) { $0 + $1.bytes }))],
            "parameters": .int(Int64(flow.transformer.weights.parameterCount)),
            "image": ["width": .int(Int64(flow.packing.width)), "height": .int(Int64(flow.packing.height))],
        ]
    }

    /// Saves unsaved adapter steps (shutdown, unload).
    public func checkpoint(into state: StateDirectory) throws {
        if unsaved { try saveCheckpoint() }
    }

    /// The model left the registry (`models/unload`, replaced by a load): saves unsaved steps.
    public func unloaded() {
        do { try checkpoint(into: checkpoints.state) } catch {
            Log.error("model \(name): checkpoint at unload failed: \(error)")
        }
    }

    // MARK: Adapter bookkeeping

    /// Marks the adapter as owned by a training job; throws busy when another job owns it.
    func claim(job: Int, method: String) throws {
        if let t = trainer, t.job != job {
            throw RPCError.busy("the adapter of model \(name) is being trained by job \(t.job) (\(t.method)); "
                                + "wait for it or cancel it")
        }
        trainer = (job, method)
    }

    func release(job: Int) {
        if trainer?.job == job { trainer = nil }
    }

    /// Throws busy when a training job owns the adapter (for methods that replace or drop it).
    func requireIdle(_ what: String) throws {
        if let t = trainer {
            throw RPCError.busy("cannot \(what) model \(name) while job \(t.job) (\(t.method)) trains its adapter; "
                                + "wait for it or cancel it")
        }
    }

    /// Counts one training step and checkpoints when `every` steps are unsaved.
    func trained(steps: Int = 1, checkpointEvery every: Int) throws {
        adapterSteps += steps
        unsavedSteps += steps
        unsaved = true
        if unsavedSteps >= every { try saveCheckpoint() }
    }

    /// The adapter was replaced or reset outside training: `steps` is what the new one has taken.
    func adapterReplaced(steps: Int) {
        adapterSteps = steps
        unsavedSteps = 0
        unsaved = flow.adapter != nil
        restoredFrom = nil
    }

    /// Writes the adapter to its checkpoint under the state directory, atomically. Returns the path
    /// (nil when the model has no adapter: its checkpoint is then removed).
    @discardableResult
    func saveCheckpoint() throws -> String? {
        guard let a = flow.adapter else {
            checkpoints.remove()
            unsaved = false
            unsavedSteps = 0
            lastCheckpoint = nil
            return nil
        }
        let path = try checkpoints.save(a, steps: adapterSteps, modelPath: self.path)
        unsaved = false
        unsavedSteps = 0
        lastCheckpoint = (path, adapterSteps, Date())
        Log.debug("model \(name): adapter checkpointed at \(adapterSteps) steps to \(path)")
        return path
    }

    /// Restores the last checkpoint, if there is one that fits the model (a mismatch is logged).
    private func restore() {
        guard checkpoints.exists else { return }
        do {
            let (adapter, steps) = try checkpoints.load(config: flow.transformer.config)
            flow.transformer.adapter = adapter
            adapterSteps = steps
            restoredFrom = checkpoints.adapterPath
            lastCheckpoint = (checkpoints.adapterPath, steps, checkpoints.modified ?? Date())
            Log.info("model \(name): restored its adapter (rank \(adapter.rank), \(steps) training steps) from "
                     + checkpoints.adapterPath)
        } catch {
            Log.warn("model \(name): its adapter checkpoint \(checkpoints.adapterPath) does not fit the model, "
                     + "starting without an adapter: \(error)")
        }
    }

    // MARK: Anchor banks

    /// The anchor bank for these settings, shared by every evaluation and DK-DM run on the model
    /// (anchors are reference samples, adapter off, so they stay valid whatever the adapter learns).
    func bank(_ settings: AnchorBank.Settings) -> AnchorBank {
        if let b = banks.first(where: { $0.settings == settings }) { return b }
        let b = AnchorBank(settings: settings, model: flow)
        banks.append(b)
        return b
    }
}

extension AnchorBank {
    /// Bytes of the anchors held.
    var bytes: Int { prompts.reduce(0) { $0 + count($1) } * anchorSize * MemoryLayout<Float>.size }
}
