import EruDiff
import Foundation
import RPCServer
import World

extension MethodTable {
    /// `evaluate`: samples every prompt of a set (or of the caller's knowledge items), verifies the
    /// images and reports score, accuracy and knowledge gap overall and per split, family, subdomain
    /// and item, with the knowledge dislocation (DESIGN §4.4). Defaults are `EvaluationOptions`'s.
    func registerEvaluate(_ engine: Engine) {
        register("evaluate", .job { _, params in
            let model = try engine.model(params)
            let (request, chosen) = try EvaluateParams.options(params)
            let (options, anchors) = (request.options, request.anchors)
            let knowledge = try engine.knowledge()
            return ProcedureJob<Evaluation>(
                title: "evaluate: " + (chosen.map { "\($0.count) items" } ?? options.sets.joined(separator: ", ")),
                method: "evaluate", model: model, trains: false, checkpointEvery: .max,
                make: { m in
                    var o = options
                    o.sampling.useAdapter = o.sampling.useAdapter && m.flow.adapter != nil
                    return try Evaluation(model: m.flow, knowledge: knowledge, options: o, items: chosen,
                                          bank: m.bank(anchors))
                },
                finish: { r, job in
                    var out = EvaluateParams.json(r, items: job.procedure?.items ?? [], includeItems: request.includeItems)
                    out["elapsedMs"] = .int(job.elapsedMs)
                    return .object(out)
                })
        })
    }
}

enum EvaluateParams {
    /// What `evaluate` reads with option tables: the evaluation's options, how the dislocation's
    /// reference anchors are sampled (by default like DK-DM's, so that both share one bank), and the
    /// report's shape.
    struct Request {
        var options = EvaluationOptions()
        var anchors = AnchorBank.Settings()
        var includeItems = true

        init() { options.chunk = SampleJob.chunk }

        static let specs: [OptionSpec<Request>] = EvaluationOptions.specs.map { $0.lifted(\.options) } + [
            .group("anchors", AnchorBank.Settings.specs.map { $0.lifted(\.anchors) },
                   "How the dislocation's reference anchors are sampled (default: as matchDistributions', so both share the cached anchors)."),
            .bool("includeItems", \.includeItems, "Include the per-item metrics."),
        ]
    }

    /// The evaluation the parameters ask for, and the caller's items (nil: `set`).
    static func options(_ params: Params) throws -> (Request, [KnowledgeItem]?) {
        var r = Request()
        var items: [KnowledgeItem]?
        if let raw = params.raw("items") {
            if params.has("set") { throw RPCError.invalidParams("give \"set\" or \"items\", not both") }
            items = try self.items(raw)
            r.options.sets = []
        }
        try Request.specs.read(into: &r, params)
        try r.options.validate()   // its EruDiffError.invalidArgument answers -32602
        return (r, items)
    }

    /// Caller-supplied items in the knowledge-base format, validated like the bundled ones.
    static func items(_ raw: JSON) throws -> [KnowledgeItem] {
        guard case .array(let list) = raw, !list.isEmpty else {
            throw RPCError.invalidParams("\"items\" must be a non-empty array of knowledge items (the knowledge-base format)")
        }
        do {
            return try KnowledgeBase(data: Data(raw.serialized()), source: "params.items", checks: [.captions]).items
        } catch {
            throw RPCError.invalidParams("\"items\": \(error)")
        }
    }

    static func stats(_ s: PromptStats?) -> JSON {
        guard let s else { return .null }
        return ["score": TrainingParams.number(s.score), "accuracy": TrainingParams.number(s.accuracy),
                "images": .int(Int64(s.images)), "wrong": wrong(s), "clean": TrainingParams.number(s.clean)]
    }

    /// Images per wrong attribute ({} when none was wrong or the count is missing).
    static func wrong(_ s: PromptStats?) -> JSON {
        .object((s?.wrong ?? [:]).mapValues { .int(Int64($0)) })
    }

    /// One group's metrics: the implicit prompts' score, accuracy and share of clean images, the gap,
    /// the explicit and superficial prompts' stats, and the mean dislocation of its items when measured.
    static func metrics(_ g: GroupMetrics, dislocation: Double?) -> JSON {
        [
            "score": TrainingParams.number(g.implicit?.score ?? 0), "accuracy": TrainingParams.number(g.implicit?.accuracy ?? 0),
            "knowledgeGap": TrainingParams.number(g.knowledgeGap), "count": .int(Int64(g.items)),
            "wrong": wrong(g.implicit), "clean": TrainingParams.number(g.implicit?.clean),
            "explicit": stats(g.explicit), "superficial": stats(g.superficial),
            "dislocation": TrainingParams.number(dislocation),
        ]
    }

    static func json(_ r: EvaluationResult, items: [KnowledgeItem], includeItems: Bool) -> [String: JSON] {
        let d = r.dislocation
        /// The mean dislocation of the items of each group (by family or subdomain).
        func dislocation(by key: (KnowledgeItem) -> String) -> [String: Double] {
            guard let d else { return [:] }
            var sums: [String: (Double, Int)] = [:]
            for item in items { if let v = d.perItem[item.id] { sums[key(item), default: (0, 0)].0 += v; sums[key(item), default: (0, 0)].1 += 1 } }
            return sums.mapValues { $0.0 / Double($0.1) }
        }
        var out: [String: JSON] = [
            "score": TrainingParams.number(r.score ?? 0), "accuracy": TrainingParams.number(r.accuracy ?? 0),
            "knowledgeGap": TrainingParams.number(r.knowledgeGap), "dislocation": TrainingParams.number(d?.mean),
            "images": .int(Int64(r.images)), "samplesPerItem": .int(Int64(r.samplesPerItem)),
            "seed": .int(Int64(bitPattern: r.seed)), "explicitCaptions": stats(r.explicit),
            "computeMs": .int(Int64(r.elapsedSeconds * 1000)),
        ]
        let k = r.knowledge
        out["overall"] = k.map { metrics($0.overall, dislocation: d?.mean) } ?? .null
        let splitD = d?.bySplit ?? [:], familyD = dislocation { $0.family.rawValue }, subD = dislocation { $0.subdomain }
        out["bySplit"] = .object(Dictionary(uniqueKeysWithValues: (k?.bySplit ?? [:]).map { ($0.key, metrics($0.value, dislocation: splitD[$0.key])) }))
        out["byFamily"] = .object(Dictionary(uniqueKeysWithValues: (k?.byFamily ?? [:]).map { ($0.key, metrics($0.value, dislocation: familyD[$0.key])) }))
        out["bySubdomain"] = .object(Dictionary(uniqueKeysWithValues: (k?.bySubdomain ?? [:]).map { ($0.key, metrics($0.value, dislocation: subD[$0.key])) }))
        var list: [JSON] = []
        if includeItems, let k {
            for item in items {
                guard let g = k.byItem[item.id], case .object(var m) = metrics(g, dislocation: d?.perItem[item.id]) else { continue }
                m["id"] = .string(item.id)
                m["split"] = .string(item.split.rawValue)
                m["family"] = .string(item.family.rawValue)
                m["subdomain"] = .string(item.subdomain)
                list.append(.object(m))
            }
        }
        out["items"] = .array(list)
        return out
    }
}
