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
        let set = try params.string("set", default: "world:train")
        return try TrainingParams.items(set, knowledge: engine.knowledge()).map(KnowledgePair.init)
    }

    /// The DK-DM options the parameters ask for (all but the pairs), and the adapter shape to resolve
    /// on the worker. Defaults are `DistributionMatchingOptions`'s.
    static func options(_ params: Params) throws -> (DistributionMatchingOptions, TrainingParams.Lora) {
        var o = DistributionMatchingOptions()
        o.steps = try params.int("steps", default: o.steps, in: 0...1_000_000)
        o.batchSize = try params.int("batchSize", default: o.batchSize, in: 1...1024)
        o.learningRate = try params.float("learningRate", default: o.learningRate, in: 0...10)
        o.weightDecay = try params.float("weightDecay", default: o.weightDecay, in: 0...10)
        o.warmupSteps = try params.int("warmupSteps", default: o.warmupSteps, in: 0...1_000_000)
        if let f = try params.optionalDouble("finalLearningRateFraction", in: 0...1) { o.finalLearningRateFraction = Float(f) }
        o.maxGradNorm = try TrainingParams.maxGradNorm(params, default: o.maxGradNorm)
        o.preserveWeight = try params.float("preserveWeight", default: o.preserveWeight, in: 0...1e6)
        if let k = try params.optionalInt("keepPerStep", in: 0...1024) { o.keepPerStep = k }
        let target = try params.choice("matchTarget", DistributionMatchingOptions.MatchTarget.allCases.map(\.rawValue),
                                       default: DistributionMatchingOptions.MatchTarget.reference.rawValue)
        if target != DistributionMatchingOptions.MatchTarget.reference.rawValue { o.matchTarget = .init(rawValue: target) }
        try anchors(params, into: &o)
        try replay(params, into: &o)
        o.timeSampling = try TrainingParams.timeSampling(params, default: o.timeSampling)
        let lora = try TrainingParams.lora(params, base: o.lora)
        o.lora = lora.settings
        o.freshAdapter = try params.bool("freshAdapter", default: o.freshAdapter)
        o.seed = try params.seed(default: o.seed)!
        try dislocation(params, into: &o)
        try o.validate()   // its EruDiffError.invalidArgument answers -32602
        return (o, lora)
    }

    /// `anchors: {perPair, source, refreshEvery, verify, maxDraws, steps, guidance, seed}`.
    static func anchors(_ params: Params, into o: inout DistributionMatchingOptions) throws {
        guard let a = try params.nested("anchors") else { return }
        o.anchorsPerPair = try a.int("perPair", default: o.anchorsPerPair, in: 1...256)
        let source = try a.choice("source", ["reference", "policy"], default: "reference")
        let refresh = try a.int("refreshEvery", default: 50, in: 1...1_000_000)
        o.anchorSource = source == "reference" ? .reference : .policy(refreshEvery: refresh)
        o.verifyAnchors = try a.bool("verify", default: o.verifyAnchors)
        if o.verifyAnchors && source != "reference" {
            throw RPCError.invalidParams("\"anchors.verify\" needs reference anchors (\"anchors.source\": \"reference\")")
        }
        if let m = try a.optionalInt("maxDraws", in: 1...1024) {
            guard m >= o.anchorsPerPair else {
                throw RPCError.invalidParams("\"anchors.maxDraws\" (\(m)) must be at least \"anchors.perPair\" (\(o.anchorsPerPair))")
            }
            o.maxAnchorDraws = m
        }
        var sampling = o.anchors.sampling
        sampling.steps = try a.int("steps", default: sampling.steps, in: 1...1000)
        sampling.guidance = try a.float("guidance", default: sampling.guidance ?? 1, in: 0...100)
        o.anchors = AnchorBank.Settings(sampling: sampling, seed: try a.seed(default: o.anchors.seed)!)
        try a.finish()
    }

    /// `replay: {perStep, pool, source, weight}`: random explicit captions in the keep term.
    static func replay(_ params: Params, into o: inout DistributionMatchingOptions) throws {
        guard let r = try params.nested("replay") else { return }
        o.replayPerStep = try r.int("perStep", default: o.replayPerStep, in: 0...1024)
        o.replayPool = try r.int("pool", default: o.replayPool, in: 1...100_000)
        let source = try r.choice("source", ["reference", "rendered"], default: o.replaySource.rawValue)
        o.replaySource = DistributionMatchingOptions.ReplaySource(rawValue: source)!
        if let w = try r.optionalDouble("weight", in: 0...1e6) { o.replayWeight = Float(w) }
        try r.finish()
    }

    /// `dislocation`: false (not measured), true, or `{samplesPerPair, anchors, seed}`.
    static func dislocation(_ params: Params, into o: inout DistributionMatchingOptions) throws {
        guard let v = params.raw("dislocation") else { return }
        switch v {
        case .bool(let b): o.dislocation = b ? DislocationMeasurement.Settings() : nil
        case .object:
            o.dislocation = try dislocationSettings(Params(method: params.method, v, prefix: "dislocation."))
        default: throw params.invalid("dislocation", "true, false or {samplesPerPair, anchors, seed}", got: v)
        }
    }

    static func dislocationSettings(_ d: Params) throws -> DislocationMeasurement.Settings {
        var s = DislocationMeasurement.Settings()
        s.samplesPerPair = try d.int("samplesPerPair", default: s.samplesPerPair, in: 1...1024)
        s.anchors = try d.int("anchors", default: s.anchors, in: 1...256)
        s.seed = try d.seed(default: s.seed)!
        try d.finish()
        return s
    }
}
