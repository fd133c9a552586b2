import EruDiff
import Foundation
import Models
import Tensors
import World

/// `erudiff-train refactor`: baseline evaluation → DK-DM → NO-RL → evaluation on a model folder,
/// resumable (see `Refactoring`).
enum RefactorCommand: TrainCommand {
    static let name = "refactor"
    static let summary = "knowledge refactoring: evaluate, DK-DM, NO-RL, evaluate (resumable)"

    static let usage = """
    usage: erudiff-train refactor [--model DIR] [--out DIR] [--seed N] [--ablation] [--threads N] [--minilm DIR]
        [--eval-samples N] [--eval-steps N] [--explicit-count N] [--guidance W]
        [--dkdm-steps N] [--dkdm-batch N] [--dkdm-lr X] [--anchors K] [--anchor-steps N] [--verify-anchors] [--anchor-draws N] [--match-target reference|anchor]
        [--keep W] [--keep-rows N]
        [--replay N] [--replay-pool N] [--replay-weight W] [--replay-source reference|rendered] [--time-sampling uniform|logit-normal[:m:s]|shifted:s]
        [--lora-rank R] [--lora-alpha A] [--lora-targets default|all] [--policy-steps N] [--policy-lr X] [--policy-refresh N]
        [--rl-rounds N] [--rl-steps N] [--rl-group G] [--rl-batch N] [--rl-prompts N] [--rl-captions N]
        [--rl-kinds implicit,explicit] [--rl-lr X] [--beta B] [--amax A] [--rl-reward score|graded] [--kl W] [--kl-reference base|start] [--rl-conditional] [--sde-noise A] [--rl-sample-steps N]
        [--rl-time-sampling uniform|logit-normal[:m:s]|shifted:s]
        [--checkpoint-seconds S]
      Runs on the base weights of --model (default models/mini) and writes into --out (default out/refactor):
      adapter.safetensors (PEFT LoRA), results.json, results.md and grid-<family>.png. Resumes from
      --out/refactor-state.safetensors when it exists (same options); SIGINT/SIGTERM checkpoint and stop.
      --ablation also evaluates DK-DM alone and runs NO-RL alone from the base model.
      --policy-steps N continues DK-DM for N steps on the policy's own samples of the implicit prompts,
      redrawn every --policy-refresh steps (default 50), at --policy-lr (default 3e-3); off by default.
      --verify-anchors trains DK-DM only on reference anchors the world verifier reads as their explicit
      caption states, drawing up to --anchor-draws per pair (default 3 × --anchors) to find them.
      --match-target anchor trains the implicit prompt on the anchors' own velocities ε − x0 instead of
      the reference's (fine-tuning on the anchors, not DK-DM; with --verify-anchors, on verified ones).
      --kl-reference start holds NO-RL to the adapter it starts from (default base: adapter off);
      --rl-conditional trains NO-RL's conditional velocity instead of the guided one that sampled its groups
      (NegativeOnlyRLOptions.guidedPolicy, on by default).
      --rl-reward graded also credits a wrong shape by how well the expected one fits (WorldReward).
      Defaults: RefactoringOptions.standard (chosen to fit 15 minutes on 2 cores).
    """

    static func run(arguments: [String]) throws {
        if arguments.contains("--help") || arguments.contains("-h") { print(usage); return }
        let f = try Flags(arguments, valued: [
            "model", "out", "seed", "threads", "minilm", "eval-samples", "eval-steps", "explicit-count", "guidance",
            "dkdm-steps", "dkdm-batch", "dkdm-lr", "anchors", "anchor-steps", "anchor-draws", "match-target", "keep", "keep-rows", "replay", "replay-pool", "replay-weight", "replay-source",
            "time-sampling", "policy-steps", "policy-lr", "policy-refresh", "lora-rank", "lora-alpha", "lora-targets", "rl-rounds", "rl-steps", "rl-group", "rl-batch",
            "rl-prompts", "rl-captions", "rl-kinds", "rl-lr", "beta", "amax", "rl-reward", "kl", "kl-reference", "sde-noise", "rl-sample-steps", "rl-time-sampling",
            "checkpoint-seconds",
        ], boolean: ["ablation", "rl-conditional", "verify-anchors"])
        if let t = try f.int("threads") { BLAS.setThreads(t); Parallel.threads = max(1, t) }
        let modelDir = URL(fileURLWithPath: f.string("model") ?? "models/mini")
        let out = URL(fileURLWithPath: f.string("out") ?? "out/refactor")
        let model = try FlowModel.load(directory: modelDir, minilm: f.string("minilm"))

        var o = RefactoringOptions.standard
        if let v = try f.int("seed") {
            o.seed = UInt64(v)
            o.evaluation.seed = UInt64(v)
            o.dkdm.seed = UInt64(v)
            o.norl.seed = UInt64(v)
        }
        o.ablation = f.has("ablation")
        if let v = try f.int("eval-samples") { o.evaluation.samplesPerItem = v }
        if let v = try f.int("eval-steps") { o.evaluation.sampling.steps = v }
        if let v = try f.int("explicit-count") { o.evaluation.explicitCount = v }
        if let v = try f.float("guidance") {
            o.evaluation.sampling.guidance = v; o.dkdm.anchors.sampling.guidance = v; o.norl.sampling.guidance = v
        }
        if let v = try f.int("dkdm-steps") { o.dkdm.steps = v }
        if let v = try f.int("dkdm-batch") { o.dkdm.batchSize = v }
        if let v = try f.float("dkdm-lr") { o.dkdm.learningRate = v }
        if let v = try f.int("anchors") { o.dkdm.anchorsPerPair = v }
        if let v = try f.int("anchor-steps") { o.dkdm.anchors.sampling.steps = v }
        if f.has("verify-anchors") { o.dkdm.verifyAnchors = true }
        if let v = try f.int("anchor-draws") { o.dkdm.maxAnchorDraws = v }
        if let v = f.string("match-target") {
            guard let t = DistributionMatchingOptions.MatchTarget(rawValue: v) else {
                let names = DistributionMatchingOptions.MatchTarget.allCases.map(\.rawValue).joined(separator: " or ")
                throw UsageError(description: "--match-target expects \(names)")
            }
            o.dkdm.matchTarget = t
        }
        if let v = try f.float("keep") { o.dkdm.preserveWeight = v }
        if let v = try f.int("keep-rows") { o.dkdm.keepPerStep = v }
        if let v = try f.int("replay") { o.dkdm.replayPerStep = v }
        if let v = try f.int("replay-pool") { o.dkdm.replayPool = v }
        if let v = try f.float("replay-weight") { o.dkdm.replayWeight = v }
        if let v = f.string("replay-source") {
            guard let s = DistributionMatchingOptions.ReplaySource(rawValue: v) else {
                throw UsageError(description: "--replay-source expects reference or rendered")
            }
            o.dkdm.replaySource = s
        }
        if let v = f.string("time-sampling") {
            do { o.dkdm.timeSampling = try TimeSampling(parsing: v) } catch { throw UsageError(description: "\(error)") }
        }
        if let v = f.string("rl-time-sampling") {
            do { o.norl.timeSampling = try TimeSampling(parsing: v) } catch { throw UsageError(description: "\(error)") }
        }
        if let v = try f.int("lora-rank") { o.dkdm.lora.rank = v }
        if let v = try f.float("lora-alpha") { o.dkdm.lora.alpha = v }
        if let v = f.string("lora-targets") {
            guard v == "all" || v == "default" else { throw UsageError(description: "--lora-targets expects default or all") }
            o.dkdm.lora.allLayers = v == "all"
            o.dkdm.lora.targets = nil
        }
        if let v = try f.int("policy-steps") {
            if v <= 0 { o.dkdmOnPolicy = nil } else { o.dkdmOnPolicy = o.dkdmOnPolicy ?? .init(); o.dkdmOnPolicy?.steps = v }
        }
        if (f.string("policy-lr") != nil || f.string("policy-refresh") != nil) && o.dkdmOnPolicy == nil {
            throw UsageError(description: "--policy-lr and --policy-refresh need --policy-steps N (N > 0)")
        }
        if let v = try f.float("policy-lr") { o.dkdmOnPolicy?.learningRate = v }
        if let v = try f.int("policy-refresh") { o.dkdmOnPolicy?.refreshEvery = v }
        if let v = try f.int("rl-rounds") { o.norl.rounds = v }
        if let v = try f.int("rl-steps") { o.norl.stepsPerRound = v }
        if let v = try f.int("rl-group") { o.norl.groupSize = v }
        if let v = try f.int("rl-batch") { o.norl.batchSize = v }
        if let v = try f.int("rl-prompts") { o.norl.promptsPerRound = v > 0 ? v : nil }
        if let v = try f.int("rl-captions") { o.rlCaptions = v }
        if let v = f.string("rl-kinds") {
            o.rlKinds = try v.split(separator: ",").map { s in
                guard let k = KnowledgeItem.PromptKind(rawValue: String(s)) else {
                    throw UsageError(description: "--rl-kinds expects implicit and/or explicit, comma-separated")
                }
                return k
            }
        }
        if let v = try f.float("rl-lr") { o.norl.learningRate = v }
        if let v = try f.float("beta") { o.norl.beta = v }
        if let v = try f.float("amax") { o.norl.advantageClip = v }
        if let v = try f.float("kl") { o.norl.klWeight = v }
        if let v = f.string("rl-reward") {
            guard let r = WorldReward(rawValue: v) else { throw UsageError(description: "--rl-reward expects score or graded") }
            o.norl.reward = r
        }
        if f.has("rl-conditional") { o.norl.guidedPolicy = false }
        if let v = f.string("kl-reference") {
            guard let r = NegativeOnlyRLOptions.KLReference(rawValue: v) else {
                throw UsageError(description: "--kl-reference expects base or start")
            }
            o.norl.klReference = r
        }
        if let v = try f.float("sde-noise") { o.norl.sampling.sdeNoise = v > 0 ? v : nil }
        if let v = try f.int("rl-sample-steps") { o.norl.sampling.steps = v }
        if let v = try f.float("checkpoint-seconds") { o.checkpointSeconds = Double(v) }
        do { try o.validate() } catch { throw UsageError(description: "\(error)") }

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
