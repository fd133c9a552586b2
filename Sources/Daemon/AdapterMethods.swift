import EruDiff
import Foundation
import Models
import RPCServer

extension MethodTable {
    /// `adapters/save`, `adapters/load`, `adapters/reset`: the model's LoRA adapter as PEFT safetensors
    /// files. Loading and resetting are refused while a training job owns the adapter; both are
    /// checkpointed at once, so the state directory always holds what the model uses. Paths are
    /// checked by `FileChecks` (regular files only; a foreign file is replaced only with `overwrite`).
    func registerAdapterMethods(_ engine: Engine) {
        register("adapters/save", .job { _, params in
            let model = try engine.model(params)
            let path = try params.optionalString("path").map { try Engine.absolute($0) }
            let overwrite = try params.bool("overwrite", default: false)
            if let path { try FileChecks.writable(path, kind: .adapter, overwrite: overwrite) }
            return ClosureJob(title: "adapters/save: \(model.name)") { _ in
                guard let a = model.flow.adapter else {
                    throw RPCError.invalidParams("model \(model.name) has no adapter to save (train one with matchDistributions "
                                                 + "or rlStep, or load one with adapters/load)")
                }
                let written: String
                if let path {
                    let url = URL(fileURLWithPath: path)
                    try FileChecks.writable(path, kind: .adapter, overwrite: overwrite)   // again: time passed in the queue
                    do {
                        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
                        try AdapterCheckpoints.write(a, steps: model.adapterSteps, modelPath: model.path, to: url)
                    } catch let e as RPCError {
                        throw e
                    } catch {
                        throw RPCError.invalidParams("\"path\" \(path) cannot be written: \(error)")
                    }
                    written = url.path
                } else {
                    written = try model.saveCheckpoint() ?? ""
                }
                let size = (try? FileManager.default.attributesOfItem(atPath: written))?[.size] as? NSNumber
                return .done(["path": .string(written), "bytes": .int(size?.int64Value ?? 0), "rank": .int(Int64(a.rank)),
                              "alpha": .double(Double(a.alpha)), "steps": .int(Int64(model.adapterSteps))])
            }
        })

        register("adapters/load", .job { _, params in
            let model = try engine.model(params)
            let path = try Engine.absolute(params.string("path"))
            guard FileManager.default.fileExists(atPath: path) else {
                throw RPCError.invalidParams("\"path\" \(path) does not exist")
            }
            try FileChecks.readable(path)
            let alpha = try params.optionalDouble("alpha", in: 1e-6...1e6).map(Float.init)
            return ClosureJob(title: "adapters/load: \(model.name)") { _ in
                try model.requireIdle("load an adapter into")
                let adapter: LoRAAdapter, steps: Int
                do {
                    (adapter, steps) = try AdapterCheckpoints.read(URL(fileURLWithPath: path),
                                                                   config: model.flow.transformer.config, alpha: alpha)
                } catch {
                    let what = "\(error)".contains("non-finite") ? "holds values that are not finite (NaN or infinite)"
                        : "is not a LoRA adapter of model \(model.name)"
                    throw RPCError.invalidParams("\"path\" \(path) \(what); nothing was changed: \(error)")
                }
                model.flow.transformer.adapter = adapter
                model.adapterReplaced(steps: steps)
                try model.saveCheckpoint()
                return .done(["adapter": model.adapter, "path": .string(path)])
            }
        })

        register("adapters/reset", .job { _, params in
            let model = try engine.model(params)
            let remove = try params.bool("remove", default: false)
            let lora = try TrainingParams.lora(params)
            if remove && lora.given { throw RPCError.invalidParams("give \"lora\" or \"remove\": true, not both") }
            return ClosureJob(title: "adapters/reset: \(model.name)") { _ in
                try model.requireIdle("reset the adapter of")
                let flow = model.flow
                if remove {
                    flow.removeAdapter()
                } else if lora.given || flow.adapter == nil {
                    let s = try lora.resolve(flow.transformer.config)
                    do { try flow.createAdapter(rank: s.rank, alpha: s.alpha, targets: s.targets, seed: s.seed) } catch {
                        throw RPCError.invalidParams("\"lora\": \(error)")
                    }
                } else {
                    try flow.resetAdapter(seed: lora.settings.seed)
                    flow.adapterEnabled = true
                }
                model.adapterReplaced(steps: 0)
                try model.saveCheckpoint()
                return .done(["adapter": model.adapter])
            }
        })
    }
}
