import Diffusion
import Foundation
import Models
import Tensors
import World

/// Base pretraining of a flow model on the bundled world (DESIGN.md §4.1): plain conditional flow
/// matching on rendered scenes and their explicit captions — never an implicit prompt — with caption
/// dropout (so guidance works) and logit-normal timesteps.
///
/// Driven one step at a time (`step()`), resumable: the whole training state (weights, their EMA,
/// AdamW moments, step) is checkpointed atomically into `<out>/pretrain-state.safetensors`, and every
/// step's randomness is derived from (seed, step), so a resumed run continues exactly as an
/// uninterrupted one would. `finish()` writes the model folder (diffusers' config.json and weights —
/// the EMA weights — plus erudiff.json and training.json).
public final class Pretraining {
    public struct Options: Codable, Equatable, Sendable {
        // The options of the table below (`specs`, `erudiff-train pretrain`'s flags) are documented there.
        public var steps = 12_000
        public var batch = 64
        public var learningRate: Float = 6e-4
        public var warmupSteps = 300
        /// The learning rate decays by a cosine to this fraction of its peak at the last step.
        public var finalLearningRateFraction: Float = 0.05
        public var weightDecay: Float = 0
        public var maxGradNorm: Float = 1
        public var captionDropout: Float = 0.1
        /// Decay of the exponential moving average of the weights that the shipped model uses.
        public var emaDecay: Float = 0.999
        public var captionPool = 20_000
        public var textTokens = 24
        public var seed: UInt64 = 1
        public var checkpointEvery = 250
        public var config = ModelShape()
        public var geometryCurriculum: GeometryCurriculum? = nil
        /// `geometryCurriculum` for the flags: none while both its counts are zero.
        var curriculum: GeometryCurriculum {
            get { geometryCurriculum ?? GeometryCurriculum(fixedSteps: 0, rampSteps: 0) }
            set { geometryCurriculum = newValue }
        }
        /// nil or 1: none (see `FlowMatchingTrainer.Options.timeShift`).
        public var timeShift: Float? = nil
        public var timeStd: Float? = nil
        public var samplingShift: Float? = nil
        public var initialWeights: String? = nil
        public var patch: Int? = nil
        public var prediction: PredictionTarget? = nil
        public init() {}

        /// The options of a pretraining run, by their flags.
        public static let specs: [OptionSpec<Options>] = [
            .int("steps", \.steps, 1...100_000_000, "Total optimisation steps (the learning-rate schedule is laid out over them)."),
            .int("batch", \.batch, 1...65_536, "Scenes per step."),
            .number("lr", \.learningRate, 0...10, "Peak learning rate."),
            .int("warmup", \.warmupSteps, 0...1_000_000, "The learning rate's linear warm-up in steps."),
            .seed(\.seed, "Seed of the run."),
            .int("checkpoint-every", \.checkpointEvery, 0...100_000_000, "Steps between automatic checkpoints (0: only at the end and when asked)."),
            .int("pool", \.captionPool, 1...10_000_000, "Distinct captions encoded up front (each draw still renders a fresh image)."),
            .int("text-tokens", \.textTokens, 3...512, "Text tokens per caption."),
            .int("layers", \.config.numLayers, 0...64, "Double-stream blocks."),
            .int("single-layers", \.config.numSingleLayers, 0...64, "Single-stream blocks."),
            .int("heads", \.config.numAttentionHeads, 1...64, "Attention heads."),
            .int("head-dim", \.config.attentionHeadDim, 1...1024, "Width of a head."),
            OptionSpec("rope-axes", .text, "RoPE widths of the three position axes, like 8,28,28.",
                       get: { .string($0.config.axesDimsRope.map(String.init).joined(separator: ",")) },
                       set: { o, v in o.config.axesDimsRope = v.string!.split(separator: ",").compactMap { Int($0) }
                           guard o.config.axesDimsRope.count == 3 else { throw OptionError("three integers like 8,28,28") } }),
            .int("fixed-geometry", \.curriculum.fixedSteps, 0...100_000_000, "Steps during which every scene is large and centred (shape first, placement later)."),
            .int("geometry-ramp", \.curriculum.rampSteps, 0...100_000_000, "Steps over which the share of large, centred scenes then falls to zero."),
            .number("time-shift", \.timeShift, 1e-6...1e6, "Shift of the logit-normal training times: above 1 toward noise, below 1 toward the data (null: 1)."),
            .number("time-std", \.timeStd, 1e-6...1e6, "Spread of the logit-normal training times (null: 1); wider trains more near both ends."),
            .number("sampling-shift", \.samplingShift, 1e-6...1e6, "The sampling schedule's shift the model ships with in erudiff.json (null: 1)."),
            OptionSpec("init", .text, nullable: true, "A model folder whose weights start the run (its shape must match); null: from scratch.",
                       get: { $0.initialWeights.map { .string($0) } }, set: { o, v in o.initialWeights = v.string }),
            OptionSpec("patch", .int(1...Renderer.side), nullable: true, "Side of the pixel patch a token packs, a divisor of the canvas (null: 4).",
                       get: { $0.patch.map { .int($0) } },
                       set: { o, v in o.patch = v.int; if let p = v.int, Renderer.side % p != 0 { throw OptionError("a divisor of \(Renderer.side)") } }),
            OptionSpec("prediction", .choice(PredictionTarget.allCases.map(\.rawValue)), nullable: true,
                       "What the network predicts, the loss staying in velocity space (null: the velocity).",
                       get: { $0.prediction.map { .string($0.rawValue) } }, set: { o, v in o.prediction = v.string.flatMap(PredictionTarget.init) }),
        ]
    }

    /// The transformer's size (DESIGN §3.2); MiniLM fixes the text widths at 384.
    public struct ModelShape: Codable, Equatable, Sendable {
        public var numLayers = 2
        public var numSingleLayers = 4
        public var attentionHeadDim = 32
        public var numAttentionHeads = 4
        public var axesDimsRope = [8, 12, 12]
        public init() {}

        func fluxConfig(textWidth: Int, inChannels: Int) -> FluxConfig {
            FluxConfig(inChannels: inChannels, numLayers: numLayers, numSingleLayers: numSingleLayers,
                       attentionHeadDim: attentionHeadDim, numAttentionHeads: numAttentionHeads,
                       jointAttentionDim: textWidth, pooledProjectionDim: textWidth, axesDimsRope: axesDimsRope)
        }
    }

    /// What one step did.
    public struct StepReport: Sendable {
        public let step: Int
        public let loss: Float
        public let gradNorm: Float
        public let learningRate: Float
    }

    public let options: Options
    public let out: URL
    public let model: FluxTransformer
    public let pipeline: FluxPipelineConfig
    public let packing: FluxPacking
    public let pool: CaptionPool
    public private(set) var step = 0
    /// Seconds spent in training steps, accumulated across resumptions.
    public private(set) var trainingSeconds = 0.0
    /// Exponential moving average of the step loss (for progress lines).
    public private(set) var smoothedLoss: Float = .nan

    private let trainer: FlowMatchingTrainer
    /// The training step's options as the run set them (for tests).
    var trainerOptions: FlowMatchingTrainer.Options { trainer.options }
    private let ema: FluxWeights
    private let images, states, pooled: Tensor
    /// Pool indices of the captions that can be drawn large and centred (for the geometry curriculum).
    private let fixedGeometryIndices: [Int]

    public static let stateFileName = "pretrain-state.safetensors"
    public var stateURL: URL { out.appendingPathComponent(Self.stateFileName) }

    /// Prepares a run writing into `out`, resuming from its state file when one exists (whose options
    /// must then match, except `steps`, which may be raised to train longer).
    public init(out: URL, options: Options, encoder: PromptEncoder, log: ((String) -> Void)? = nil) throws {
        self.out = out
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        let stateURL = out.appendingPathComponent(Self.stateFileName)
        var opts = options
        var resumed: SafeTensors? = nil
        if FileManager.default.fileExists(atPath: stateURL.path) {
            let file = try SafeTensors(contentsOf: stateURL)
            guard let json = file.metadata["options"], let saved = try? JSONDecoder().decode(Options.self, from: Data(json.utf8))
            else { throw PretrainingError.badState(stateURL.path, "no readable options in its metadata") }
            var a = saved, b = options
            a.steps = 0; b.steps = 0; a.checkpointEvery = 0; b.checkpointEvery = 0
            guard a == b else {
                throw PretrainingError.badState(stateURL.path, "it was made with other options; use another --out or the same options")
            }
            opts.steps = max(options.steps, saved.steps)
            resumed = file
        }
        self.options = opts
        let probe = try encoder.context([""], length: opts.textTokens)
        pipeline = FluxPipelineConfig(imageSize: Renderer.side, imageChannels: 3, patch: opts.patch ?? 4,
                                      textTokens: opts.textTokens, shift: opts.samplingShift ?? 1,
                                      prediction: opts.prediction ?? .velocity)
        packing = try pipeline.packing()
        let config = opts.config.fluxConfig(textWidth: probe.pooled.shape[1], inChannels: packing.tokenChannels)
        try config.validate()
        // Checked before the captions are encoded, so a wrong folder fails at once.
        let initial = try resumed == nil ? opts.initialWeights.map { try Self.loadInitialWeights(URL(fileURLWithPath: $0), config: config) } : nil
        let weights = FluxWeights.random(config: config, seed: opts.seed)
        model = FluxTransformer(weights: weights)
        ema = FluxWeights.zeros(config)
        var tOpts = FlowMatchingTrainer.Options()
        tOpts.learningRate = opts.learningRate
        tOpts.weightDecay = opts.weightDecay
        tOpts.maxGradNorm = opts.maxGradNorm
        tOpts.captionDropout = opts.captionDropout
        tOpts.timeShift = opts.timeShift ?? 1
        tOpts.timeStd = opts.timeStd ?? 1
        tOpts.prediction = pipeline.prediction
        trainer = try FlowMatchingTrainer(model: model, batch: opts.batch, positions: packing.positions(textTokens: opts.textTokens),
                                          options: tOpts, seed: opts.seed)
        images = Tensor(zeros: [opts.batch, Renderer.side, Renderer.side, 3])
        states = Tensor(zeros: [opts.batch, opts.textTokens, config.jointAttentionDim])
        pooled = Tensor(zeros: [opts.batch, config.pooledProjectionDim])
        let started = Date()
        pool = try CaptionPool(count: opts.captionPool, seed: opts.seed &+ 0x5EED, encoder: encoder,
                               textTokens: opts.textTokens)
        log?(String(format: "encoded %d captions in %.1f s", opts.captionPool, Date().timeIntervalSince(started)))
        fixedGeometryIndices = pool.captions.enumerated().filter { GeometryCurriculum.admitsFixedGeometry($0.element.attributes) }
            .map(\.offset)
        if let file = resumed {
            try restore(from: file)
            log?("resumed from \(stateURL.path) at step \(step)")
        } else {
            if let initial { model.weights.copy(from: initial) }
            ema.copy(from: model.weights)
            if let dir = opts.initialWeights { log?("started from the weights of \(dir)") }
        }
    }

    /// A saved model's weights, which must have the run's shape.
    private static func loadInitialWeights(_ dir: URL, config: FluxConfig) throws -> FluxWeights {
        let saved: FluxWeights
        do { saved = try FluxCheckpoint.load(directory: dir) } catch {
            throw PretrainingError.badInitialWeights(dir.path, "\(error)")
        }
        guard saved.config == config else {
            throw PretrainingError.badInitialWeights(dir.path, "its config.json describes another model shape than the run's options")
        }
        return saved
    }

    /// Whether every planned step has been taken.
    public var isFinished: Bool { step >= options.steps }

    /// Linear warm-up, then a cosine down to the final fraction, reached after the last step.
    public var schedule: LearningRateSchedule {
        LearningRateSchedule(peak: options.learningRate, warmupSteps: options.warmupSteps,
                             floorFraction: options.finalLearningRateFraction, floorStep: options.steps)
    }

    /// One optimisation step on a fresh batch; checkpoints when due. Nil once finished.
    @discardableResult
    public func next() throws -> StepReport? {
        guard !isFinished else { return nil }
        let started = Date()
        let batch = draw(step: step)
        let indices = batch.map(\.caption)
        for (i, d) in batch.enumerated() { Renderer.render(d.scene, into: images.data + i * Renderer.floatCount) }
        let x0 = packing.pack(images)
        let text = try pool.gather(indices, states: states, pooled: pooled)
        let lr = schedule.rate(at: step)
        trainer.options.learningRate = lr
        trainer.rng = RNG(seed: options.seed ^ 0x7261_696E, stream: UInt64(step))
        let result = try trainer.step(x0: x0, text: text, unconditional: pool.unconditional)
        updateEMA()
        step += 1
        trainingSeconds += Date().timeIntervalSince(started)
        smoothedLoss = smoothedLoss.isNaN ? result.loss : 0.98 * smoothedLoss + 0.02 * result.loss
        if (options.checkpointEvery > 0 && step % options.checkpointEvery == 0) || isFinished { try checkpoint() }
        return StepReport(step: step, loss: result.loss, gradNorm: result.gradNorm, learningRate: lr)
    }

    /// The training examples of step `step` (0-based): for each row of the batch, the pool index of
    /// its caption and the scene drawn for it. A function of (seed, step) alone, so a resumed run draws
    /// what an uninterrupted one would.
    public func draw(step: Int) -> [(caption: Int, scene: Scene)] {
        var rng = RNG(seed: options.seed, stream: UInt64(step) &+ 1)
        let fixedShare = options.geometryCurriculum?.fixedShare(at: step) ?? 0
        return (0..<options.batch).map { _ in
            if fixedShare > 0 && !fixedGeometryIndices.isEmpty && (fixedShare >= 1 || rng.uniform() < fixedShare) {
                let i = fixedGeometryIndices[rng.int(below: fixedGeometryIndices.count)]
                return (i, Scene.sample(GeometryCurriculum.fixingGeometry(pool.captions[i].attributes), rng: &rng))
            }
            let i = rng.int(below: pool.count)
            return (i, Scene.sample(pool.captions[i].attributes, rng: &rng))
        }
    }

    private func updateEMA() {
        let d = min(options.emaDecay, Float(1 + step) / Float(10 + step))
        for (e, w) in zip(ema.tensors, model.weights.tensors) { e.tensor.average(towards: w.tensor, decay: d) }
        ema.markChanged()
    }

    /// The EMA weights as a model (what `finish()` ships), for checks during training.
    public func emaModel() -> FluxTransformer { FluxTransformer(weights: ema) }

    /// AdamW's first and second moments of each named weight, as views into the optimiser's buffers
    /// (which may hold one tensor per weight or a few contiguous ranges), so the state file names them
    /// by weight whatever the optimiser's layout.
    private func momentViews() -> [(m: Tensor, v: Tensor)] {
        let opt = trainer.optimizer
        return model.weights.tensors.map { w in
            for (j, p) in opt.parameters.enumerated() {
                let offset = w.tensor.data - p.value.data
                if offset >= 0 && offset + w.tensor.count <= p.value.count {
                    return (Tensor(borrowing: opt.m[j].data + offset, shape: w.tensor.shape, owner: opt.m[j]),
                            Tensor(borrowing: opt.v[j].data + offset, shape: w.tensor.shape, owner: opt.v[j]))
                }
            }
            preconditionFailure("weight \(w.name) is not among the optimiser's parameters")
        }
    }

    /// Writes the whole training state atomically.
    public func checkpoint() throws {
        var list: [(name: String, tensor: Tensor)] = []
        let moments = momentViews()
        for (i, w) in model.weights.tensors.enumerated() {
            list.append(("weights." + w.name, w.tensor))
            list.append(("ema." + w.name, ema.tensors[i].tensor))
            list.append(("adam_m." + w.name, moments[i].m))
            list.append(("adam_v." + w.name, moments[i].v))
        }
        let opts = String(decoding: try JSONEncoder().encode(options), as: UTF8.self)
        let meta = ["format": "erudiff-pretrain-state", "step": String(step),
                    "adam_steps": String(trainer.optimizer.stepCount),
                    "training_seconds": String(trainingSeconds), "smoothed_loss": String(smoothedLoss),
                    "options": opts]
        try SafeTensors.write(list, metadata: meta, to: stateURL)
    }

    private func restore(from file: SafeTensors) throws {
        let path = stateURL.path
        func copy(_ name: String, into t: Tensor) throws {
            let src = try file.tensor(named: name)
            guard src.count == t.count else { throw PretrainingError.badState(path, "\(name) has \(src.shape), expected \(t.shape)") }
            t.copy(from: src)
        }
        // A slim state (scripts/slim-pretrain-state: weights and EMA only, half the size, the form a
        // long run is committed in) resumes with fresh AdamW moments, re-estimated from zero with bias
        // correction restarted.
        let moments = momentViews()
        let slim = !file.contains("adam_m." + (model.weights.tensors.first?.name ?? ""))
        for (i, w) in model.weights.tensors.enumerated() {
            try copy("weights." + w.name, into: w.tensor)
            try copy("ema." + w.name, into: ema.tensors[i].tensor)
            if slim {
                moments[i].m.zero()
                moments[i].v.zero()
            } else {
                try copy("adam_m." + w.name, into: moments[i].m)
                try copy("adam_v." + w.name, into: moments[i].v)
            }
        }
        guard let s = file.metadata["step"].flatMap(Int.init),
              let a = slim ? 0 : file.metadata["adam_steps"].flatMap(Int.init) else {
            throw PretrainingError.badState(path, "no step in its metadata")
        }
        model.weights.markChanged()
        ema.markChanged()
        step = s
        trainer.optimizer.stepCount = a
        trainingSeconds = file.metadata["training_seconds"].flatMap(Double.init) ?? 0
        smoothedLoss = file.metadata["smoothed_loss"].flatMap(Float.init) ?? .nan
    }

    /// Writes the trained model (EMA weights) into `out`: config.json, the diffusers weight file,
    /// erudiff.json and training.json (`record`, plus the run's step count, time and loss).
    public func finish(record: [String: String] = [:]) throws {
        try FluxCheckpoint.save(ema, directory: out)
        try pipeline.write(to: out.appendingPathComponent(FluxPipelineConfig.fileName))
        var info: [String: Any] = ["steps": step, "batch": options.batch,
                                   "training_seconds": (trainingSeconds * 10).rounded() / 10,
                                   "final_smoothed_loss": Double(smoothedLoss), "options": try JSONSerialization.jsonObject(
                                       with: JSONEncoder().encode(options))]
        if let dir = options.initialWeights {
            // A continued model's budget is its whole training: the starting model's time plus this run's.
            let url = URL(fileURLWithPath: dir).appendingPathComponent("training.json")
            if let d = try? Data(contentsOf: url), let base = try? JSONSerialization.jsonObject(with: d) as? [String: Any],
               let seconds = (base["total_training_seconds"] ?? base["training_seconds"]) as? Double {
                info["initial_training_seconds"] = seconds
                info["total_training_seconds"] = ((seconds + trainingSeconds) * 10).rounded() / 10
            }
        }
        for (k, v) in record { info[k] = v }
        let data = try JSONSerialization.data(withJSONObject: info, options: [.prettyPrinted, .sortedKeys])
        try AtomicFile.write(data, to: out.appendingPathComponent("training.json"))
    }
}

/// A pretraining state file that cannot be resumed.
public enum PretrainingError: Error, CustomStringConvertible {
    case badState(String, String)
    /// The model folder given as initial weights cannot start this run.
    case badInitialWeights(String, String)
    public var description: String {
        switch self {
        case let .badState(path, why): return "pretraining state \(path): \(why)"
        case let .badInitialWeights(path, why): return "initial weights \(path): \(why)"
        }
    }
}
