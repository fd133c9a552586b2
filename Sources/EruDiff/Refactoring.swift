import Foundation
import Models
import Tensors
import World

/// The refactoring job (DESIGN §6's main job, `scripts/demo`'s study run in process): baseline evaluation of the base model →
/// DK-DM on the train pairs → NO-RL on the train prompts → evaluation again; optionally an ablation
/// (evaluation after DK-DM alone; NO-RL alone from the base model and its evaluation). It writes into
/// `out`: the adapter (`adapter.safetensors`, PEFT), `results.json`, `results.md`, and an image grid
/// per family (`grid-<family>.png`: implicit prompts × base | after DK-DM | after DK-DM + NO-RL |
/// explicit anchor).
///
/// Driven unit by unit like every procedure. Its state (stage, finished results, anchors, grid
/// samples, the adapter, and the training run in progress with its optimizer) is checkpointed
/// atomically into `refactor-state.safetensors` at every stage end, every `checkpointSeconds` during
/// training and on `checkpoint()`; a new job on the same `out` resumes from it and ends with the same
/// adapter and results as an uninterrupted run (an evaluation in progress restarts; it is
/// deterministic).
public final class Refactoring: Procedure {
    public static let stateFileName = "refactor-state.safetensors"

    public let model: FlowModel
    public let knowledge: KnowledgeBase
    public let options: RefactoringOptions
    public let out: URL
    public let stages: [RefactoringStage]
    public private(set) var results: RefactoringResults
    /// The items whose implicit prompts the grids show.
    public let gridItems: [KnowledgeItem]
    /// Called with a line of news (stage starts, checkpoints).
    public var log: ((String) -> Void)?

    private var stageIndex = 0
    /// Anchor banks of other settings than DK-DM's (`bank`); not checkpointed (drawn again).
    private var otherBanks: [AnchorBank] = []
    private var current: AnyUnitRunner?
    private let bank: AnchorBank
    private var gridTokens: [RefactoringStage: Tensor] = [:]
    private var mainAdapter: Tensor?
    private var lastCheckpoint = Date()
    private var resumedPrefix: String?
    private var pendingState: StateArchive?

    public var stateURL: URL { out.appendingPathComponent(Self.stateFileName) }
    public var stage: RefactoringStage { stageIndex < stages.count ? stages[stageIndex] : .done }

    /// A job on `model` (its base weights; any adapter is replaced) writing into `out`, resumed from
    /// `out`'s state file when there is one (made with the same options).
    public init(model: FlowModel, knowledge: KnowledgeBase, options: RefactoringOptions, out: URL,
                command: String? = nil) throws {
        try options.validate()
        self.model = model
        self.knowledge = knowledge
        self.options = options
        self.out = out
        var st: [RefactoringStage] = [.baseline, .gridBase, .dkdm]
        if options.dkdmOnPolicy != nil { st.append(.dkdmPolicy) }
        if options.ablation || options.evaluateAfterDKDM { st.append(.afterDKDM) }
        st += [.gridDKDM, .norl, .final, .gridFinal]
        if options.ablation { st += [.norlOnly, .afterNoRLOnly] }
        st.append(.report)
        stages = st
        results = RefactoringResults(options: options, model: model.name)
        results.command = command
        bank = AnchorBank(settings: options.dkdm.anchors, model: model)
        var grid: [KnowledgeItem] = []
        for family in KnowledgeItem.Family.allCases {
            grid += knowledge.items.filter { $0.family == family && $0.split == .train }.prefix(options.grid.trainRowsPerFamily)
            grid += knowledge.items.filter { $0.family == family && $0.split == .testConcept }.prefix(options.grid.heldOutRowsPerFamily)
        }
        gridItems = grid
        _ = try pairs(options.dkdmSet)
        _ = try rlPrompts()
        do { try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true) } catch {
            throw EruDiffError.invalidArgument("cannot create \(out.path): \(error.localizedDescription)")
        }
        if FileManager.default.fileExists(atPath: stateURL.path) { try restore(StateArchive(contentsOf: stateURL)) }
    }

    public var isFinished: Bool { stage == .done }
    public var output: RefactoringResults? { isFinished ? results : nil }

    // MARK: Driving

    public func next() throws -> ProcedureProgress? {
        guard stage != .done else { return nil }
        let st = stage
        let started = Date(), cpu = processCPUSeconds()
        defer {
            results.seconds[st.rawValue, default: 0] += Date().timeIntervalSince(started)
            results.cpuSeconds[st.rawValue, default: 0] += processCPUSeconds() - cpu
        }
        if st == .report {
            try writeOutputs()
            stageIndex += 1
            try checkpoint()
            return ProcedureProgress(stage: st.rawValue, done: 1, total: 1, fraction: 1)
        }
        if current == nil {
            log?("stage \(st.rawValue)")
            current = try makeRunner(st)
            if let archive = pendingState, let prefix = resumedPrefix {
                if let d = current?.base as? DistributionMatching { try d.restore(from: archive, prefix: prefix, includeBank: false) }
                if let r = current?.base as? NegativeOnlyRL { try r.restore(from: archive, prefix: prefix) }
            }
            pendingState = nil; resumedPrefix = nil
        }
        let runner = current!
        let p = try runner.next()
        if runner.isFinished {
            try finishStage(st, runner)
            current = nil
            stageIndex += 1
            try checkpoint()
        } else if [.dkdm, .dkdmPolicy, .norl, .norlOnly].contains(st), Date().timeIntervalSince(lastCheckpoint) >= options.checkpointSeconds {
            // Only training runs have state worth saving mid-stage (an evaluation restarts).
            try checkpoint()
        }
        let inner = runner.isFinished ? 1 : (p?.fraction ?? 0)
        return ProcedureProgress(stage: st.rawValue, done: p?.done ?? 0, total: p?.total ?? 0,
                                 fraction: (Double(stages.firstIndex(of: st)!) + inner) / Double(stages.count), loss: p?.loss)
    }

    /// The anchor bank of `settings`: DK-DM's, shared when they are the same (as the daemon shares them).
    private func bank(_ settings: AnchorBank.Settings) -> AnchorBank {
        if settings == bank.settings { return bank }
        if let b = otherBanks.first(where: { $0.settings == settings }) { return b }
        otherBanks.append(AnchorBank(settings: settings, model: model))
        return otherBanks.last!
    }

    private func evaluation() throws -> Evaluation {
        var o = options.evaluation
        o.sampling.useAdapter = o.sampling.useAdapter && model.adapter != nil
        return try Evaluation(model: model, knowledge: knowledge, options: o, bank: bank(options.evaluationAnchors))
    }

    /// The grid's images: row k's implicit (and explicit) prompt with seed `grid.seed + k`, as
    /// `scripts/demo` samples them.
    private func gridSampling(withAnchors: Bool) throws -> BatchedSampling {
        let g = options.grid
        var req = gridItems.enumerated().map { BatchedSampling.Request(prompt: $1.implicit, seed: g.seed &+ UInt64($0)) }
        if withAnchors {
            req += gridItems.enumerated().map { BatchedSampling.Request(prompt: $1.explicit, seed: g.seed &+ UInt64($0)) }
        }
        let s = SamplingSettings(steps: g.steps, guidance: g.guidance, useAdapter: model.adapter != nil)
        return try BatchedSampling(model: model, requests: req, settings: s, chunk: options.evaluation.chunk)
    }

    private func makeRunner(_ st: RefactoringStage) throws -> AnyUnitRunner {
        switch st {
        case .baseline:
            model.removeAdapter()
            return AnyUnitRunner(try evaluation())
        case .afterDKDM, .final, .afterNoRLOnly:
            return AnyUnitRunner(try evaluation())
        case .gridBase:
            return AnyUnitRunner(try gridSampling(withAnchors: true))
        case .gridDKDM, .gridFinal:
            return AnyUnitRunner(try gridSampling(withAnchors: false))
        case .dkdm:
            var o = options.dkdm
            o.freshAdapter = true
            return AnyUnitRunner(try DistributionMatching(model: model, pairs: try pairs(options.dkdmSet), options: o, bank: bank))
        case .dkdmPolicy:
            guard let o = options.dkdmOnPolicy else { throw EruDiffError.invalidArgument("no on-policy DK-DM settings") }
            return AnyUnitRunner(try DistributionMatching(model: model, pairs: try pairs(options.dkdmSet), options: o, bank: bank(o.anchors)))
        case .norl, .norlOnly:
            var o = options.norl
            o.lora = options.dkdm.lora
            o.freshAdapter = st == .norlOnly
            if st == .norlOnly, mainAdapter == nil, let a = model.adapter { mainAdapter = a.flat.copy() }
            return AnyUnitRunner(try NegativeOnlyRL(model: model, prompts: try rlPrompts(), options: o))
        case .report, .done:
            throw EruDiffError.invalidArgument("stage \(st.rawValue) has no runner")
        }
    }

    private func finishStage(_ st: RefactoringStage, _ r: AnyUnitRunner) throws {
        switch st {
        case .baseline: results.baseline = r.result as? EvaluationResult
        case .afterDKDM: results.afterDKDM = r.result as? EvaluationResult
        case .final: results.final = r.result as? EvaluationResult
        case .afterNoRLOnly: results.afterNoRLOnly = r.result as? EvaluationResult
        case .dkdm: results.dkdm = r.result as? DistributionMatching.Result
        case .dkdmPolicy: results.dkdmPolicy = r.result as? DistributionMatching.Result
        case .norl: results.norl = r.result as? NegativeOnlyRL.Result
        case .norlOnly: results.norlOnly = r.result as? NegativeOnlyRL.Result
        case .gridBase, .gridDKDM, .gridFinal: gridTokens[st] = (r.base as! BatchedSampling).tokens
        case .report, .done: break
        }
    }

    // MARK: Prompts

    private func pairs(_ set: String) throws -> [KnowledgePair] { try knowledge.set(named: set).map(KnowledgePair.init) }

    private func rlPrompts() throws -> [RLPrompt] {
        try RLPrompt.list(knowledge.set(named: options.rlSet), kinds: options.rlKinds, captions: options.rlCaptions, seed: options.norl.seed)
    }

    // MARK: Outputs

    private func writeOutputs() throws {
        if let main = mainAdapter, let a = model.adapter { a.flat.copy(from: main) }  // back to DK-DM + NO-RL
        if model.adapter != nil { try model.saveAdapter(to: out.appendingPathComponent("adapter.safetensors")) }
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        enc.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        try AtomicFile.write(try enc.encode(results), to: out.appendingPathComponent("results.json"))
        try AtomicFile.write(Data(results.markdown().utf8), to: out.appendingPathComponent("results.md"))
        try writeGrids()
    }

    private func writeGrids() throws {
        guard !gridItems.isEmpty, let base = gridTokens[.gridBase] else { return }
        let pk = model.packing, per = pk.tokens * pk.tokenChannels, n = gridItems.count
        func image(_ t: Tensor?, _ i: Int) -> RGBImage? {
            guard let t, (i + 1) * per <= t.count else { return nil }
            let one = Tensor(borrowing: t.data + i * per, shape: [1, pk.tokens, pk.tokenChannels], owner: t)
            return model.rgbImage(pk.unpack(one), index: 0)
        }
        for family in KnowledgeItem.Family.allCases {
            let rows = gridItems.indices.filter { gridItems[$0].family == family }
            guard !rows.isEmpty else { continue }
            let cells = rows.map { i in
                [image(base, i), image(gridTokens[.gridDKDM], i), image(gridTokens[.gridFinal], i), image(base, n + i)]
                    .map { $0 ?? RGBImage(width: pk.width, height: pk.height) }
            }
            let labels = rows.map { gridItems[$0].implicit + (gridItems[$0].split == .train ? "" : " (held out)") }
            let grid = ImageGrid(rows: cells, rowLabels: labels,
                                 columnLabels: ["base", "DK-DM", results.finalName, "explicit anchor"], scale: options.grid.scale,
                                 rowLabelChars: 28)
            try grid.write(to: out.appendingPathComponent("grid-\(family.rawValue).png").path)
        }
    }

    // MARK: Checkpoints

    /// Writes the job's state atomically (see the type's documentation).
    public func checkpoint() throws {
        let a = StateArchive()
        a.set("format", string: "erudiff-refactor-state")
        try a.set("options", json: options)
        try a.set("stages", json: stages)
        a.set("stage_index", string: String(stageIndex))
        try a.set("results", json: results)
        try bank.save(into: a, prefix: "bank.")
        for (st, t) in gridTokens { a.set("grid." + st.rawValue, t) }
        if let adapter = model.adapter {
            a.set("adapter", adapter.flat)
            a.set("adapter_layout", string: "\(adapter.rank)/\(adapter.alpha)/" + adapter.modules.joined(separator: ","))
        }
        if let mainAdapter { a.set("main_adapter", mainAdapter) }
        if let d = current?.base as? DistributionMatching { try d.save(into: a, prefix: "proc.", includeBank: false) }
        if let r = current?.base as? NegativeOnlyRL { try r.save(into: a, prefix: "proc.") }
        try a.write(to: stateURL)
        lastCheckpoint = Date()
        log?("checkpoint at stage \(stage.rawValue)")
    }

    private func restore(_ a: StateArchive) throws {
        guard a.metadata["format"] == "erudiff-refactor-state" else {
            throw EruDiffError.badState(path: a.source, problem: "not a refactoring state")
        }
        let saved: RefactoringOptions = try a.json("options")
        guard saved == options else {
            throw EruDiffError.badState(path: a.source, problem: "it was made with other options; use another --out or the same options")
        }
        let savedStages: [RefactoringStage] = try a.json("stages")
        guard savedStages == stages else { throw EruDiffError.badState(path: a.source, problem: "stage list differs") }
        stageIndex = try a.int("stage_index")
        guard stageIndex >= 0 && stageIndex <= stages.count else { throw EruDiffError.badState(path: a.source, problem: "bad stage") }
        let command = results.command
        results = try a.json("results")
        results.command = command ?? results.command
        try bank.restore(from: a, prefix: "bank.")
        for st in RefactoringStage.allCases where a.has("grid." + st.rawValue) { gridTokens[st] = try a.tensor("grid." + st.rawValue) }
        if a.has("adapter") {
            let l = options.dkdm.lora
            let adapter = try model.createAdapter(rank: l.rank, alpha: l.alpha, targets: l.resolvedTargets(model.transformer.config),
                                                  seed: l.seed)
            guard try a.string("adapter_layout") == "\(adapter.rank)/\(adapter.alpha)/" + adapter.modules.joined(separator: ",") else {
                throw EruDiffError.badState(path: a.source, problem: "the saved adapter has another layout")
            }
            try a.copy("adapter", into: adapter.flat)
        } else {
            model.removeAdapter()
        }
        if a.has("main_adapter") { mainAdapter = try a.tensor("main_adapter") }
        if a.metadata["proc.stage"] != nil { pendingState = a; resumedPrefix = "proc." }
        log?("resumed from \(stateURL.path) at stage \(stage.rawValue)")
    }
}
