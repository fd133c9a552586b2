import EruDiff
import Foundation
import RPCServer
import World

extension MethodTable {
    /// `matchDistributions`: DK-DM (DESIGN §4.2) on the model's adapter — the dislocation before,
    /// reference anchors, the training steps (one unit each), the dislocation after. Defaults are
    /// `DistributionMatchingOptions`'s.
    func registerMatchDistributions(_ engine: Engine) {
        register("matchDistributions", .job { _, params in
            let model = try engine.model(params)
            let pairs = try MatchParams.pairs(params, engine: engine)
            let (options, lora) = try MatchParams.options(params)
            if options.verifyAnchors, let p = pairs.first(where: { Caption.parse($0.explicit) == nil }) {
                throw RPCError.invalidParams("\"anchors.verify\": the explicit prompt \"\(p.explicit)\" of pair \"\(p.id)\" is not a caption of the world, so its anchors cannot be verified")
            }
            let title = "matchDistributions: \(pairs.count) pairs, \(options.steps) steps"
            return ProcedureJob<DistributionMatching>(
                title: title, method: "matchDistributions", model: model, trains: true,
                checkpointEvery: engine.options.server.checkpointEvery,
                make: { m in
                    var o = options
                    o.lora = try lora.prepare(m, fresh: o.freshAdapter)
                    return try DistributionMatching(model: m.flow, pairs: pairs, options: o, bank: m.bank(o.anchors))
                },
                finish: { r, job in
                    job.trainingResult([
                        "steps": .int(Int64(r.steps)), "loss": TrainingParams.numbers(r.loss),
                        "matchLoss": TrainingParams.numbers(r.matchLoss),
                        "dislocationBefore": TrainingParams.number(r.dislocationBefore?.mean),
                        "dislocationAfter": TrainingParams.number(r.dislocationAfter?.mean),
                        "dislocation": ["before": TrainingParams.dislocation(r.dislocationBefore),
                                        "after": TrainingParams.dislocation(r.dislocationAfter)],
                        "pairs": .int(Int64(pairs.count)),
                        "anchorCheck": r.anchorCheck.map { c in
                            ["verified": .int(Int64(c.verified)), "accepted": .int(Int64(c.accepted)),
                             "short": .int(Int64(c.short)), "none": .int(Int64(c.none))]
                        } ?? .null,
                    ], computeSeconds: r.elapsedSeconds)
                })
        })
    }
}

/// `matchDistributions`' parameter groups.
enum MatchParams {
    /// `pairs: [{implicit, explicit, id?}]` or `set` (default `world:train`).
    static func pairs(_ params: Params, engine: Engine) throws -> [KnowledgePair] {
        if let list = try params.array("pairs") {
            if params.has("set") { throw RPCError.invalidParams("give \"pairs\" or \"set\", not both") }
            guard !list.isEmpty else { throw RPCError.invalidParams("\"pairs\" must be a non-empty array of {implicit, explicit}") }
            var seen = Set<String>()
            return try list.enumerated().map { i, v in
                guard case .object = v else { throw params.invalid("pairs[\(i)]", "an object {implicit, explicit}", got: v) }
                let p = try Params(method: params.method, v, prefix: "pairs[\(i)].")
                let implicit = try p.string("implicit"), explicit = try p.string("explicit")
                let id = try p.optionalString("id") ?? implicit
                try p.finish()
                guard !implicit.isEmpty, !explicit.isEmpty else {
                    throw RPCError.invalidParams("\"pairs[\(i)]\" has an empty prompt")
                }
                guard seen.insert(id).inserted else {
                    throw RPCError.invalidParams("\"pairs[\(i)]\": another pair has the id (or implicit prompt) \"\(id)\"")
                }
                return KnowledgePair(id: id, implicit: implicit, explicit: explicit)
            }
        }
        let set = try params.choice("set", KnowledgeBase.setNames, default: "world:train")
        return try engine.knowledge().set(named: set).map(KnowledgePair.init)
    }

    /// The DK-DM options the parameters ask for (all but the pairs: `DistributionMatchingOptions.specs`),
    /// and the adapter shape to resolve on the worker.
    static func options(_ params: Params) throws -> (DistributionMatchingOptions, TrainingParams.Lora) {
        var o = DistributionMatchingOptions()
        try DistributionMatchingOptions.specs.read(into: &o, params)
        try o.validate()   // its EruDiffError.invalidArgument answers -32602
        return (o, TrainingParams.Lora(settings: o.lora, given: params.has("lora")))
    }
}
