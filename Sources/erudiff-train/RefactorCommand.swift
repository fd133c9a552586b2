import EruDiff
import Foundation
import Models
import Tensors
import World

/// `erudiff-train refactor`: the main job in process — baseline evaluation → DK-DM → NO-RL →
/// evaluation on a model folder, resumable (see `Refactoring`) — on the study `scripts/demo` sends to
/// the daemon. Every option of the study is a flag (`--SECTION.NAME VALUE`, from its table); the short
/// names below set one or several of them.
enum RefactorCommand: TrainCommand {
    static let name = "refactor"
    static let summary = "knowledge refactoring: evaluate, DK-DM, NO-RL, evaluate (resumable), on scripts/demo.json's study"

    /// Short flags: the study options each sets.
    static let aliases: [(flag: String, paths: [String])] = [
        ("eval-samples", ["evaluate.samplesPerItem"]), ("eval-steps", ["evaluate.steps"]), ("explicit-count", ["evaluate.explicitCount"]),
        ("guidance", ["evaluate.guidance", "evaluate.anchors.guidance", "matchDistributions.anchors.guidance", "rlStep.guidance", "grid.guidance"]),
        ("seed", ["evaluate.seed", "matchDistributions.seed", "rlStep.seed", "grid.seed"]),
        ("dkdm-steps", ["matchDistributions.steps"]), ("dkdm-batch", ["matchDistributions.batchSize"]),
        ("dkdm-lr", ["matchDistributions.learningRate"]), ("anchors", ["matchDistributions.anchors.perPair"]),
        ("anchor-steps", ["matchDistributions.anchors.steps", "evaluate.anchors.steps"]),
        ("anchor-draws", ["matchDistributions.anchors.maxDraws"]), ("match-target", ["matchDistributions.matchTarget"]),
        ("keep", ["matchDistributions.preserveWeight"]), ("keep-rows", ["matchDistributions.keepPerStep"]),
        ("replay", ["matchDistributions.replay.perStep"]), ("replay-pool", ["matchDistributions.replay.pool"]),
        ("replay-weight", ["matchDistributions.replay.weight"]), ("replay-source", ["matchDistributions.replay.source"]),
        ("time-sampling", ["matchDistributions.timeSampling"]), ("lora-rank", ["matchDistributions.lora.rank"]),
        ("lora-alpha", ["matchDistributions.lora.alpha"]), ("lora-targets", ["matchDistributions.lora.targets"]),
        ("policy-lr", ["matchDistributionsOnPolicy.learningRate"]), ("policy-refresh", ["matchDistributionsOnPolicy.anchors.refreshEvery"]),
        ("rl-rounds", ["rlStep.rounds"]), ("rl-steps", ["rlStep.stepsPerRound"]), ("rl-group", ["rlStep.groupSize"]),
        ("rl-batch", ["rlStep.batchSize"]), ("rl-prompts", ["rlStep.promptsPerRound"]), ("rl-captions", ["rlStep.captions"]),
        ("rl-kinds", ["rlStep.kinds"]), ("rl-lr", ["rlStep.learningRate"]), ("beta", ["rlStep.beta"]), ("amax", ["rlStep.advantageClip"]),
        ("rl-reward", ["rlStep.reward"]), ("kl", ["rlStep.klWeight"]), ("kl-reference", ["rlStep.klReference"]),
        ("sde-noise", ["rlStep.noiseLevel"]), ("rl-sample-steps", ["rlStep.samplingSteps"]), ("rl-time-sampling", ["rlStep.timeSampling"]),
    ]
    /// Switches: the study option each sets, and to what.
    static let switches: [(flag: String, path: String, value: Bool)] = [
        ("verify-anchors", "matchDistributions.anchors.verify", true), ("rl-conditional", "rlStep.guidedPolicy", false),
    ]
    static let options = Dictionary(uniqueKeysWithValues: RefactoringStudy.specs.flattened().map { ($0.path, $0.spec) })

    static var usage: String {
        var s = """
        usage: erudiff-train refactor [--study FILE] [--model DIR] [--out DIR] [--minilm DIR] [--ablation] [--checkpoint-seconds S]
            [--policy-steps N] [--SECTION.NAME VALUE]... [short flags]
          Runs the study of --study (default scripts/demo.json, the one scripts/demo sends to the daemon) on the base
          weights of --model (default models/mini) and writes into --out (default out/refactor): adapter.safetensors
          (PEFT LoRA), results.json, results.md and grid-<family>.png. Resumes from --out/refactor-state.safetensors
          when it exists (same options); SIGINT/SIGTERM checkpoint and stop.
          --ablation also evaluates DK-DM alone and runs NO-RL alone from the base model.
          --policy-steps N adds (N > 0) or drops (0) matchDistributionsOnPolicy: DK-DM's options continued for N steps on
          the policy's own samples (anchors.source policy, 4 per pair, redrawn every 50 steps), at learning rate 3e-3.
          A VALUE of a list is comma-separated; null (or none) clears an optional one.

        short flags:\n
        """
        for a in aliases { s += "  --\(a.flag) VALUE".padding(toLength: 28, withPad: " ", startingAt: 0) + a.paths.joined(separator: ", ") + "\n" }
        for w in switches { s += "  --\(w.flag)".padding(toLength: 28, withPad: " ", startingAt: 0) + "\(w.path) \(w.value)\n" }
        return s + "\nstudy options (--SECTION.NAME VALUE):\n" + Flags.help(RefactoringStudy.specs.flattened().filter { $0.path != "description" })
    }

    static func run(arguments: [String]) throws {
        if arguments.contains("--help") || arguments.contains("-h") { print(usage); return }
        let f = try Flags(arguments, valued: Set(["study", "model", "out", "minilm", "checkpoint-seconds", "policy-steps"]
                                                 + aliases.map(\.flag) + options.keys.filter { $0 != "description" }),
                          boolean: Set(["ablation"] + switches.map(\.flag)))
        var study = try RefactoringStudy(contentsOf: URL(fileURLWithPath: f.string("study") ?? "scripts/demo.json"))
        // The on-policy run's flags after --policy-steps, which copies DK-DM's options as the others left them.
        func apply(onPolicy: Bool) throws {
            for (flag, value) in f.given {
                for p in aliases.first(where: { $0.flag == flag })?.paths ?? [flag] where options[p] != nil && p.hasPrefix("matchDistributionsOnPolicy.") == onPolicy {
                    try Flags.set(options[p]!, value, in: &study, flag: flag)
                }
            }
        }
        try apply(onPolicy: false)
        for w in switches where f.has(w.flag) { try options[w.path]!.set(&study, .bool(w.value)) }
        if let v = try f.int("policy-steps") {
            var p = study.options.dkdm
            p.steps = v; p.learningRate = 3e-3; p.anchorSource = .policy; p.anchorRefreshEvery = 50; p.anchorsPerPair = 4
            p.freshAdapter = false; p.dislocation = nil
            study.options.dkdmOnPolicy = v > 0 ? p : nil
        }
        if study.options.dkdmOnPolicy == nil, f.given.contains(where: { ["policy-lr", "policy-refresh"].contains($0.name) }) {
            throw CommandError(description: "--policy-lr and --policy-refresh need --policy-steps N (N > 0)")
        }
        try apply(onPolicy: true)
        var o = study.options
        o.ablation = f.has("ablation")
        if let v = try f.float("checkpoint-seconds") { o.checkpointSeconds = Double(v) }
        do { try o.validate() } catch { throw CommandError(description: "\(error)") }
        if let t = study.threads { BLAS.setThreads(t); Parallel.threads = max(1, t) }
        let model = try FlowModel.load(directory: URL(fileURLWithPath: f.string("model") ?? "models/mini"), minilm: f.string("minilm"))
        let out = URL(fileURLWithPath: f.string("out") ?? "out/refactor")

        installStopHandlers()
        let command = (["erudiff-train", "refactor"] + arguments).joined(separator: " ")
        let job = try Refactoring(model: model, knowledge: try KnowledgeBase.bundled(), options: o, out: out, command: command)
        job.log = log
        log("refactoring \(model.name) (\(model.transformer.weights.parameterCount) parameters) into \(out.path); "
            + "stage \(job.stage.rawValue) of " + job.stages.map(\.rawValue).joined(separator: " → "))
        let wall = Date()
        var lastPrint = Date(), lastStage = ""
        while let p = try job.next() {
            let now = Date()
            if p.stage != lastStage || now.timeIntervalSince(lastPrint) >= 10 || job.isFinished {
                var line = String(format: "[%6.1f s] %@ %d/%d  overall %.0f%%", now.timeIntervalSince(wall),
                                  p.stage as NSString, p.done, p.total, 100 * p.fraction)
                if let l = p.loss { line += String(format: "  loss %.5f", l) }
                log(line)
                lastPrint = now; lastStage = p.stage
            }
            if stopRequested != 0 {
                try job.checkpoint()
                log("stopped at stage \(job.stage.rawValue) (checkpointed); run the same command to continue")
                return
            }
        }
        log(String(format: "done in %.1f s of wall time (this run)", Date().timeIntervalSince(wall)))
        print(job.results.markdown())
    }
}
