import EruDiff
import Foundation
import Models
import RPCServer
import World

/// Parameters that `matchDistributions`, `rlStep` and `adapters/reset` share, the LoRA shape; and the
/// JSON form of the engine's reports.
enum TrainingParams {
    /// `lora: {rank, alpha, seed, targets}` (`LoRASettings.specs`) on top of a base shape.
    struct Lora {
        var settings: LoRASettings
        /// Whether the caller gave `lora` at all.
        var given: Bool

        /// The settings with `targets` resolved for `config` (a list of module names, or nil for the defaults).
        func resolve(_ config: FluxConfig) throws -> LoRASettings {
            var s = settings
            s.targets = s.resolvedTargets(config)
            s.allLayers = false
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
        var s = base
        try [OptionSpec<LoRASettings>.group("lora", LoRASettings.specs, "")].read(into: &s, params)
        return Lora(settings: s, given: params.has("lora"))
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

extension Array {
    /// The options of a method read from its params into `root` (absent ones keep its values); the
    /// params' other members are the method's to read, and the dispatcher's `finish()` rejects the rest.
    func read<Root>(into root: inout Root, _ params: Params) throws where Element == OptionSpec<Root> {
        for spec in self { _ = params.raw(spec.name) }
        let object = try JSONSerialization.jsonObject(with: Data(JSON.object(params.values).serialized()))
        do { try read(into: &root, from: OptionSource(object as? [String: Any] ?? [:]), finish: false) } catch let e as EruDiffError { throw e.rpcError }
    }
}
