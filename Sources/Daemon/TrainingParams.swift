import EruDiff
import Foundation
import Models
import RPCServer
import World

/// Parameters that `matchDistributions`, `rlStep` and `adapters/reset` share: the LoRA shape, the
/// knowledge sets, the time sampling; and the JSON form of the engine's reports.
enum TrainingParams {
    /// `lora: {rank, alpha, targets, seed}` on top of `base`; `targets` is "default", "all" or a list
    /// of module names, resolved against the model's config on the worker (`resolve`).
    struct Lora {
        var settings: LoRASettings
        var targets: JSON?
        /// Whether the caller gave `lora` at all.
        var given: Bool

        /// The settings with `targets` resolved for `config`.
        func resolve(_ config: FluxConfig) throws -> LoRASettings {
            var s = settings
            switch targets {
            case nil: break
            case .string(let name)?:
                do { s.targets = try LoRASettings.targets(named: name, config: config) } catch {
                    throw RPCError.invalidParams("\"lora.targets\" must be \"default\", \"all\" or a list of module names, got \"\(name)\"")
                }
            case .array(let list)?:
                s.targets = try list.map {
                    guard let n = $0.stringValue else { throw RPCError.invalidParams("\"lora.targets\" must list module names (strings)") }
                    return n
                }
            default:
                throw RPCError.invalidParams("\"lora.targets\" must be \"default\", \"all\" or a list of module names")
            }
            return s
        }

        /// The adapter settings a training job uses on `model` (on the worker): targets resolved, the
        /// shape checked against the current adapter, and the step count restarted when a new adapter
        /// will be made.
        func prepare(_ model: EngineModel, fresh: Bool) throws -> LoRASettings {
            let s = try resolve(model.flow.transformer.config)
            try check(against: model.flow.adapter, fresh: fresh)
            if fresh || model.flow.adapter == nil { model.adapterReplaced(steps: 0) }
            return s
        }

        /// Throws `-32602` when the caller asked for a shape other than the model's current adapter
        /// without asking for a fresh one (the adapter would be trained on as it is).
        func check(against adapter: LoRAAdapter?, fresh: Bool) throws {
            guard given, !fresh, let a = adapter else { return }
            if a.rank != settings.rank || a.alpha != settings.alpha {
                throw RPCError.invalidParams("\"lora\" asks for rank \(settings.rank), alpha \(settings.alpha) but the model's adapter has "
                                             + "rank \(a.rank), alpha \(a.alpha); pass \"freshAdapter\": true to replace it "
                                             + "(or adapters/reset with this lora), or leave lora out to train the current one")
            }
        }
    }

    static func lora(_ params: Params, base: LoRASettings = LoRASettings()) throws -> Lora {
        guard let p = try params.nested("lora") else { return Lora(settings: base, targets: nil, given: false) }
        var s = base
        s.rank = try p.int("rank", default: base.rank, in: 1...1024)
        s.alpha = try p.float("alpha", default: base.alpha, in: 1e-6...1e6)
        if let seed = try p.seed() { s.seed = seed }
        let targets = p.raw("targets")
        try p.finish()
        return Lora(settings: s, targets: targets, given: true)
    }

    /// Knowledge items of a built-in set (`world:train`, `world:test-paraphrase`, `world:test-concept`,
    /// `world:test`), for parameter `name`.
    static func items(_ set: String, knowledge: KnowledgeBase, name: String = "set") throws -> [KnowledgeItem] {
        do { return try knowledge.set(named: set) } catch {
            throw RPCError.invalidParams("\"\(name)\" must be one of " + KnowledgeBase.setNames.map { "\"\($0)\"" }.joined(separator: ", ")
                                         + ", got \"\(set)\"")
        }
    }

    /// `maxGradNorm`: a positive number, or null for no clipping (absent: `def`).
    static func maxGradNorm(_ params: Params, default def: Float?) throws -> Float? {
        if params.has("maxGradNorm") { return try params.float("maxGradNorm", in: 1e-9...1e9) }
        if params.values["maxGradNorm"] == .null {
            _ = params.raw("maxGradNorm")
            return nil
        }
        return def
    }

    static func timeSampling(_ params: Params, default def: TimeSampling) throws -> TimeSampling {
        guard let text = try params.optionalString("timeSampling") else { return def }
        do { return try TimeSampling(parsing: text) } catch {
            throw RPCError.invalidParams("\"timeSampling\" must be \"uniform\", \"logit-normal\", \"logit-normal:MEAN:STD\" or \"shifted:S\", got \"\(text)\"")
        }
    }

    // MARK: Reports as JSON

    static func number(_ x: Double?) -> JSON { x.map { $0.isFinite ? JSON.double($0) : .null } ?? .null }
    static func number(_ x: Float?) -> JSON { number(x.map(Double.init)) }
    static func numbers(_ xs: [Float]) -> JSON { .array(xs.map { number($0) }) }

    static func dislocation(_ r: DislocationReport?) -> JSON {
        guard let r else { return .null }
        return ["mean": number(r.mean), "bySplit": .object(r.bySplit.mapValues { number($0) }),
                "perItem": .object(r.perItem.mapValues { number($0) }), "samplesPerPair": .int(Int64(r.samplesPerPair))]
    }
}
