import EruDiff
import Foundation
import RPCServer

extension MethodTable {
    /// `models/list`, `models/load`, `models/unload`. Loading and unloading run on the worker, between
    /// units of other jobs; a model whose adapter is being trained is not replaced or unloaded. A model
    /// loaded with `keepAlive` is unloaded once no request has used it for that long (`ModelRegistry`).
    func registerModelMethods(_ engine: Engine) {
        let models = engine.models, state = engine.state
        register("models/list", .immediate { _, _ in
            ["models": models.summary()]
        })

        register("models/load", .job { _, params in
            let name = try params.string("name")
            try Engine.checkModelName(name)
            let path = try Engine.absolute(params.string("path"))
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue else {
                throw RPCError.invalidParams("\"path\" \(path) is not a folder (a model folder holds config.json, "
                                             + "diffusion_pytorch_model.safetensors and erudiff.json)")
            }
            let restore = try params.bool("restoreAdapter", default: true)
            let keepAlive = try keepAliveSeconds(params, name: name)
            return ClosureJob(title: "models/load: \(name)") { _ in
                if let old = try? engine.model(named: name) {
                    try old.requireIdle("replace")
                    try old.checkpoint(into: state)   // the new one restores what the old one learned
                }
                let model: EngineModel
                do {
                    model = try models.load(name: name, path: path, state: state, keepAlive: keepAlive)
                } catch let e as RPCError {
                    throw e
                } catch {
                    throw RPCError.invalidParams("\"path\" \(path) cannot be loaded as a model: \(error)")
                }
                let restored = model.restoredFrom
                if !restore, model.flow.adapter != nil {
                    model.flow.removeAdapter()
                    model.adapterReplaced(steps: 0)
                }
                Log.info("loaded model \(name) from \(path)"
                         + (keepAlive.map { ", unloaded after \(DurationText.describe($0)) unused (keepAlive)" } ?? ""))
                var o = model.details
                o["name"] = .string(name)
                o["bytes"] = .int(Int64(model.bytes))
                o["adapter"] = model.adapter
                o["restoredAdapter"] = restore ? (restored.map { .string($0) } ?? .null) : .null
                if let keepAlive { o["keepAlive"] = .double(keepAlive) }
                return .done(.object(o))
            }
        })

        register("models/unload", .job { _, params in
            let name = try params.string("name")
            _ = try engine.model(named: name)
            return ClosureJob(title: "models/unload: \(name)") { _ in
                let model = try engine.model(named: name)
                try model.requireIdle("unload")
                models.unload(name: name)    // checkpoints unsaved adapter steps
                Log.info("unloaded model \(name)")
                return .done(["name": .string(name), "unloaded": true,
                              "checkpoint": model.lastCheckpoint.map { .string($0.path) } ?? .null])
            }
        })
    }
}

/// `models/load`'s `keepAlive`: a duration (`"5m"`, `"90s"`) or a number of seconds, above zero; nil
/// when absent. The default model keeps no keep-alive: the methods use it when they name none.
private func keepAliveSeconds(_ params: Params, name: String) throws -> Double? {
    guard let v = params.raw("keepAlive") else { return nil }
    let expected = "a duration such as \"5m\", \"90s\" or \"1h\", or a number of seconds, above zero"
    let seconds: Double?
    switch v {
    case .string(let s): seconds = DurationText.seconds(s)
    case .int(let i): seconds = Double(i)
    case .double(let d): seconds = d
    default: seconds = nil
    }
    guard let seconds, seconds > 0, seconds <= DurationText.maximum else { throw params.invalid("keepAlive", expected, got: v) }
    guard name != DefaultModel.name else {
        throw RPCError.invalidParams("\"keepAlive\" does not apply to \(name), the default model, which stays loaded "
                                     + "until models/unload; load the model under another name to give it a keep-alive")
    }
    return seconds
}
