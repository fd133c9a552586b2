import EruDiff
import Foundation
import RPCServer
import Tensors
import World

extension MethodTable {
    /// `rlStep`: NO-RL (DESIGN §4.3) on the model's adapter, with the world verifier's rewards for
    /// groups it samples (`prompts` or `set`), or with the caller's rewards for samples that `sample`
    /// returned (`samples: [{id, reward}]`, one round on those images). Defaults are
    /// `NegativeOnlyRLOptions`'s.
    func registerRLStep(_ engine: Engine) {
        register("rlStep", .job { _, params in
            let model = try engine.model(params)
            let source = try RLParams.source(params, engine: engine, model: model)
            let (options, lora) = try RLParams.options(params)
            let title: String
            switch source {
            case .world(let p): title = "rlStep: \(p.count) prompts × \(options.groupSize), \(options.rounds) round(s)"
            case .groups(let g): title = "rlStep: \(g.reduce(0) { $0 + $1.rewards.count }) rewarded samples"
            }
            return ProcedureJob<NegativeOnlyRL>(
                title: title, method: "rlStep", model: model, trains: true, checkpointEvery: engine.options.server.checkpointEvery,
                make: { m in
                    var o = options
                    o.lora = try lora.prepare(m, fresh: o.freshAdapter)
                    switch source {
                    case .world(let prompts): return try NegativeOnlyRL(model: m.flow, prompts: prompts, options: o)
                    case .groups(let groups): return try NegativeOnlyRL(model: m.flow, groups: groups, options: o)
                    }
                },
                finish: { r, job in
                    job.trainingResult([
                        "rewardMean": TrainingParams.number(r.rewardMean),
                        "rewardStd": TrainingParams.number(r.rewardStd),
                        "negatives": .int(Int64(r.negatives)), "loss": TrainingParams.number(r.loss),
                        "losses": TrainingParams.numbers(r.losses), "rounds": .int(Int64(r.rounds)),
                        "steps": .int(Int64(job.steps)),
                        "perRound": .array(r.perRound.map { s in
                            ["rewardMean": TrainingParams.number(s.rewardMean), "rewardStd": TrainingParams.number(s.rewardStd),
                             "negatives": .int(Int64(s.negatives)), "groups": .int(Int64(s.groups)),
                             "skippedGroups": .int(Int64(s.skippedGroups)), "meanLoss": TrainingParams.number(s.meanLoss)]
                        }),
                    ], computeSeconds: r.elapsedSeconds)
                })
        })
    }
}

/// `rlStep`'s prompts or rewarded samples.
enum RLParams {
    enum Source {
        /// Prompts whose groups are sampled and scored by the world verifier.
        case world([RLPrompt])
        /// The caller's samples and rewards, grouped by prompt.
        case groups([RLGroup])
    }

    /// The NO-RL options the parameters ask for (all but the prompts or samples:
    /// `NegativeOnlyRLOptions.specs`), and the adapter shape to resolve on the worker.
    static func options(_ params: Params) throws -> (NegativeOnlyRLOptions, TrainingParams.Lora) {
        var o = NegativeOnlyRLOptions()
        try NegativeOnlyRLOptions.specs.read(into: &o, params)
        try o.validate()   // its EruDiffError.invalidArgument answers -32602
        return (o, TrainingParams.Lora(settings: o.lora, given: params.has("lora")))
    }

    static func source(_ params: Params, engine: Engine, model: EngineModel) throws -> Source {
        let given = ["prompts", "set", "samples"].filter { params.has($0) }
        guard given.count <= 1 else {
            throw RPCError.invalidParams("give one of \"prompts\", \"set\" and \"samples\", not " + given.map { "\"\($0)\"" }.joined(separator: " and "))
        }
        if params.has("samples") {
            if params.has("reward") {
                throw RPCError.invalidParams("\"reward\" is for sampled groups; with \"samples\" the rewards are the caller's")
            }
            if params.has("kinds") || params.has("captions") {
                throw RPCError.invalidParams("\"kinds\" and \"captions\" choose prompts; they do not go with \"samples\"")
            }
            return .groups(try groups(params, engine: engine, model: model))
        }
        let kinds = try params.has("kinds") ? params.stringArray("kinds").map { k -> KnowledgeItem.PromptKind in
            guard let kind = KnowledgeItem.PromptKind(rawValue: k), kind != .superficial else {
                throw RPCError.invalidParams("\"kinds\" may hold \"implicit\" and \"explicit\", got \"\(k)\"")
            }
            return kind
        } : RLPrompt.defaultKinds
        let knowledge = try engine.knowledge()
        let seed = try params.seed(default: 0)!
        let captionCount = try params.int("captions", default: 0, in: 0...10_000)
        if params.has("prompts") {
            var list: [RLPrompt] = [], seen = Set<RLPrompt>()
            for (i, text) in try params.stringArray("prompts").enumerated() {
                let p = try prompt(text, index: i, knowledge: knowledge)
                if seen.insert(p).inserted { list.append(p) }
            }
            return .world(list)
        }
        let set = try params.choice("set", [EvaluationOptions.explicitSet] + KnowledgeBase.setNames, default: "world:train")
        if set == EvaluationOptions.explicitSet, params.has("captions"), captionCount == 0 {
            throw RPCError.invalidParams("\"captions\" must be positive for set \"world:explicit\"")
        }
        let items = set == EvaluationOptions.explicitSet ? [] : try knowledge.set(named: set)
        let n = set == EvaluationOptions.explicitSet && !params.has("captions") ? 32 : captionCount
        let list = try RLPrompt.list(items, kinds: kinds, captions: n, seed: seed)
        return .world(list)
    }

    /// A prompt the world can reward: a knowledge item's implicit or explicit prompt, or an explicit
    /// caption of the world.
    static func prompt(_ text: String, index i: Int, knowledge: KnowledgeBase) throws -> RLPrompt {
        if let item = knowledge.items.first(where: { $0.implicit == text }) { return try RLPrompt(item, .implicit) }
        if let item = knowledge.items.first(where: { $0.explicit == text }) { return try RLPrompt(item, .explicit) }
        if let p = try? RLPrompt(caption: text) { return p }
        throw RPCError.invalidParams("\"prompts[\(i)]\" \"\(text)\" is neither a prompt of the knowledge base nor an explicit "
                                     + "caption of the world, so the world reward cannot score it; score its samples "
                                     + "yourself and pass \"samples\": [{id, reward}]")
    }

    /// `samples: [{id, reward}]` looked up in the sample store and grouped by prompt.
    static func groups(_ params: Params, engine: Engine, model: EngineModel) throws -> [RLGroup] {
        guard let list = try params.array("samples"), !list.isEmpty else {
            throw RPCError.invalidParams("\"samples\" must be a non-empty array of {id, reward}")
        }
        var byPrompt: [String: [(SampleStore.Record, Double)]] = [:], order: [String] = [], seen = Set<String>()
        for (i, v) in list.enumerated() {
            guard case .object = v else { throw params.invalid("samples[\(i)]", "an object {id, reward}", got: v) }
            let p = try Params(method: params.method, v, prefix: "samples[\(i)].")
            let id = try p.string("id")
            let reward = try p.double("reward")
            try p.finish()
            guard seen.insert(id).inserted else { throw RPCError.invalidParams("\"samples[\(i)].id\" \"\(id)\" is listed twice") }
            let record: SampleStore.Record
            switch engine.samples.lookup(id) {
            case .found(let r): record = r
            case .expired:
                throw RPCError.invalidParams("\"samples[\(i)].id\" \"\(id)\" has expired: the daemon keeps the last "
                                             + "\(engine.samples.limit) samples for \(Int(engine.samples.ttl)) s (--sample-store, --sample-ttl)")
            case .unknown:
                throw RPCError.invalidParams("\"samples[\(i)].id\" \"\(id)\" is unknown: not an id that sample returned since "
                                             + "this daemon started")
            }
            guard record.model == model.name else {
                throw RPCError.invalidParams("\"samples[\(i)].id\" \"\(id)\" was sampled by model \(record.model), not \(model.name)")
            }
            if byPrompt[record.prompt] == nil { order.append(record.prompt) }
            byPrompt[record.prompt, default: []].append((record, reward))
        }
        return order.map { prompt in
            let g = byPrompt[prompt]!
            let per = g[0].0.image.count
            let images = Tensor(zeros: [g.count] + g[0].0.image.shape)
            for (j, (r, _)) in g.enumerated() { (images.data + j * per).update(from: r.image.data, count: per) }
            return RLGroup(prompt: prompt, images: images, rewards: g.map(\.1))
        }
    }
}
