import Diffusion
import EruDiff
import Foundation
import Models
import Tensors
import World

/// `erudiff-train pretrain`: trains the base model on the world (DESIGN §4.1), resumable.
enum PretrainCommand: TrainCommand {
    static let name = "pretrain"
    static let summary = "base pretraining of a flow model on the bundled world (resumable)"

    static var usage: String {
        """
        usage: erudiff-train pretrain [--out DIR] [--minutes M] [--check-every N] [--check-images N] [--threads N] [--minilm DIR]
                                      [--OPTION VALUE]...
          Trains from scratch (or from the weights of --init MODEL_DIR, whose shape must match), or resumes
          from DIR/pretrain-state.safetensors when it exists (same options).
          Writes the model to DIR (default models/mini): config.json, diffusion_pytorch_model.safetensors
          (EMA weights), erudiff.json, training.json. --minutes stops early (checkpointed) after M minutes of
          wall time; run the same command again to continue. SIGINT/SIGTERM checkpoint and stop.
          --check-every N (default 1000; 0: never) samples --check-images (default 64) explicit captions with the
          EMA weights every N steps and prints the verifier's accuracy.

        options:\n
        """ + Flags.help(Pretraining.Options.specs.flattened())
    }

    static func run(arguments: [String]) throws {
        if arguments.contains("--help") || arguments.contains("-h") { print(usage); return }
        let f = try Flags(arguments, valued: Set(["out", "minutes", "check-every", "check-images", "threads", "minilm"]
                                                 + Pretraining.Options.specs.map(\.name)))
        var o = Pretraining.Options()
        for (flag, value) in f.given {
            if let spec = Pretraining.Options.specs.first(where: { $0.name == flag }) { try Flags.set(spec, value, in: &o, flag: flag) }
        }
        if let t = try f.int("threads") { BLAS.setThreads(t); Parallel.threads = max(1, t) }
        let minutes = try f.float("minutes")
        let checkEvery = try f.int("check-every") ?? 1000
        let checkImages = try f.int("check-images") ?? 64
        let out = URL(fileURLWithPath: f.string("out") ?? "models/mini")

        installStopHandlers()
        let encoder = try TextEncoder(path: f.string("minilm"), maxLength: o.textTokens)
        let run = try Pretraining(out: out, options: o, encoder: encoder, log: log)
        log("pretraining \(out.path): \(run.model.weights.parameterCount) parameters, batch \(o.batch), "
            + "steps \(run.step)/\(run.options.steps)")
        let wallStart = Date()
        var lastPrint = Date(), stepsAtPrint = run.step
        while !run.isFinished {
            guard let r = try run.next() else { break }
            let now = Date()
            if now.timeIntervalSince(lastPrint) >= 15 || run.isFinished {
                let rate = Double(run.step - stepsAtPrint) / now.timeIntervalSince(lastPrint)
                let eta = Double(run.options.steps - run.step) / max(rate, 1e-9)
                log(String(format: "step %6d/%d  loss %.4f (smoothed %.4f)  |g| %.2f  lr %.2e  %.2f steps/s  ETA %@",
                           r.step, run.options.steps, r.loss, run.smoothedLoss, r.gradNorm, r.learningRate, rate,
                           duration(eta)))
                lastPrint = now; stepsAtPrint = run.step
            }
            if checkEvery > 0, run.step % checkEvery == 0 || run.isFinished {
                let acc = try explicitCheck(run: run, encoder: encoder, images: checkImages)
                log("check at step \(run.step): \(acc)")
            }
            if stopRequested != 0 || (minutes.map { now.timeIntervalSince(wallStart) >= Double($0) * 60 } ?? false) {
                try run.checkpoint()
                log("stopped at step \(run.step) (checkpointed); run the same command to continue")
                break
            }
        }
        let command = (["erudiff-train", "pretrain"] + arguments).joined(separator: " ")
        try run.finish(record: ["command": command])
        log(String(format: "wrote %@ after %d steps, %.1f min of training, smoothed loss %.4f", out.path, run.step,
                   run.trainingSeconds / 60, run.smoothedLoss))
    }

    /// Samples `images` random explicit captions (fixed seed) with the EMA weights, 20 Euler steps at
    /// guidance 4 with the model's sampling shift, and reports the verifier's per-attribute and strict accuracy against each caption.
    static func explicitCheck(run: Pretraining, encoder: PromptEncoder, images: Int) throws -> String {
        var rng = RNG(seed: 0xC4EC)
        let caps = (0..<images).map { _ in Caption.random(&rng) }
        let e = try encoder.context(caps.map(\.text), length: run.options.textTokens)
        let u = try encoder.context([""], length: run.options.textTokens)
        let sampler = try FlowSampler(model: run.emaModel(), packing: run.packing,
                                      prompts: TextConditioning(states: e.states, pooled: e.pooled),
                                      unconditional: TextConditioning(states: u.states, pooled: u.pooled),
                                      guidance: 4, seeds: (0..<images).map { UInt64($0) + 1 }, steps: 20,
                                      shift: .fixed(run.pipeline.shift), prediction: run.pipeline.prediction)
        try sampler.run()
        let imgs = sampler.images()
        let verifier = Verifier()
        var strict = 0, shape = 0, color = 0, bg = 0, bgN = 0
        for i in 0..<images {
            let v = try verifier.verify(signedUnit: imgs.data + i * run.packing.pixelCount)
            let want = caps[i].attributes
            if KnowledgeMetrics.isCorrect(found: v.attributes, expected: want) { strict += 1 }
            if v.attributes.shape == want.shape { shape += 1 }
            if v.attributes.color == want.color { color += 1 }
            if let b = want.background { bgN += 1; if v.attributes.background == b { bg += 1 } }
        }
        let pct = { (a: Int, n: Int) in String(format: "%.0f%%", 100 * Double(a) / Double(max(n, 1))) }
        return "strict \(pct(strict, images)), shape \(pct(shape, images)), colour \(pct(color, images)), "
            + "background \(pct(bg, bgN)) over \(images) explicit captions"
    }

    static func duration(_ s: Double) -> String {
        guard s.isFinite else { return "?" }
        let m = Int(s / 60)
        return m >= 60 ? "\(m / 60)h\(String(format: "%02d", m % 60))m" : "\(m)m\(String(format: "%02d", Int(s) % 60))s"
    }
}
