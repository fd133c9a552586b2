/// The settings of a DK-DM run (DESIGN §4.2; the daemon's `matchDistributions` parameters).
public struct DistributionMatchingOptions: Codable, Equatable, Sendable {
    /// Where the anchors x0 come from.
    public enum AnchorSource: String, CaseIterable, Codable, Equatable, Sendable {
        /// Reference samples (adapter off, with guidance) of the explicit prompt, drawn once.
        case reference
        /// Policy samples (adapter on, with guidance) of the implicit prompt, redrawn every
        /// `anchorRefreshEvery` steps (on-policy, like DMD).
        case policy
    }

    /// Where the clean images of replayed explicit captions come from.
    public enum ReplaySource: String, CaseIterable, Codable, Equatable, Sendable {
        /// Reference samples of the caption (what the model already draws for it).
        case reference
        /// The world's renders of the caption (ground truth).
        case rendered
    }

    /// What the implicit prompt's velocity is trained towards on an anchor's path.
    public enum MatchTarget: String, CaseIterable, Codable, Equatable, Sendable {
        /// DESIGN §4.2: the reference's velocity under the explicit prompt, sg[v_ref(x_t, t, c_e)] — the
        /// reference's average over every image of c_e that x_t could have come from, right or wrong.
        case reference
        /// The anchor's own flow-matching velocity ε − x0: fine-tuning the implicit prompt on the anchor
        /// images themselves, and with `verifyAnchors` on only those the verifier accepts, so that a
        /// reference that sometimes draws its explicit prompt wrong does not teach the implicit one the
        /// misses too. Not DK-DM's distribution matching; an experiment beside it
        /// (docs/experiments/2026-12-06-verified-samples-target.md).
        case anchor
    }

    // The options of the table below (`specs`) are documented there. The defaults are the best
    // refactoring measured on `mini` (docs/decisions.md, "The methods' defaults"), so that
    // `{"set": "world:train"}` alone is the main job's DK-DM.
    public var steps = 1600
    public var batchSize = 16
    public var learningRate: Float = 8e-3
    public var weightDecay: Float = 0
    public var maxGradNorm: Float? = 1
    public var warmupSteps = 10
    public var finalLearningRateFraction: Float? = 0.1
    public var rowsPerPass = 16
    public var anchorsPerPair = 4
    public var anchorSource: AnchorSource = .reference
    public var anchorRefreshEvery = 50
    /// How anchors are sampled (ignored when the run is given a bank: the bank's settings win).
    public var anchors = AnchorBank.Settings()
    public var verifyAnchors = false
    public var maxAnchorDraws: Int? = nil
    /// nil: `.reference` (optional so that the options of runs saved before it existed still decode).
    public var matchTarget: MatchTarget? = nil
    public var preserveWeight: Float = 1
    public var keepPerStep: Int? = 8
    public var replayPerStep = 8
    public var replayPool = 256
    public var replaySource: ReplaySource = .reference
    public var replayWeight: Float? = 2
    /// Shifted towards noise by default: an image's background and colours are decided at the start of
    /// sampling, where pretraining's logit-normal times rarely go (docs/experiments/2026-12-05-dkdm-time-sampling.md).
    public var timeSampling: TimeSampling = .shifted(8)
    public var lora = LoRASettings()
    public var freshAdapter = false
    public var seed: UInt64 = 0
    public var dislocation: DislocationMeasurement.Settings? = DislocationMeasurement.Settings()

    public init() {}

    /// Throws naming the first option out of range.
    public func validate() throws {
        try Self.specs.check(self, "matchDistributions")
        func bad(_ s: String) -> EruDiffError { .invalidArgument("matchDistributions: " + s) }
        if verifyAnchors && anchorSource != .reference {
            throw bad("\"anchors.verify\" needs reference anchors (\"anchors.source\": \"reference\")")
        }
        if matchTarget == .anchor && anchorSource != .reference {
            throw bad("\"matchTarget\": \"anchor\" needs reference anchors (\"anchors.source\": \"reference\"; the policy's own samples would teach it nothing new)")
        }
        if let m = maxAnchorDraws, m < anchorsPerPair {
            throw bad("\"anchors.maxDraws\" (\(m)) must be at least \"anchors.perPair\" (\(anchorsPerPair))")
        }
    }

    /// The options of `matchDistributions` (DESIGN §4.2), each declared once (`OptionSpec`).
    public static let specs: [OptionSpec<Self>] = [
        .int("steps", \.steps, 0...1_000_000, "Training steps (one unit each)."),
        .int("batchSize", \.batchSize, 1...1024, "Pairs per step."),
        .int("rowsPerPass", \.rowsPerPass, 1...4096, "Rows per forward/backward pass, whose gradients add up (bounds memory)."),
    ] + AdapterOptimizer.specs(\.learningRate, \.weightDecay, \.maxGradNorm) + [
        .int("warmupSteps", \.warmupSteps, 0...1_000_000, "Linear warm-up of the learning rate over this many steps."),
        .number("finalLearningRateFraction", \.finalLearningRateFraction, 0...1, "Cosine decay of the learning rate to this fraction of it (null: none)."),
        .group("anchors", [
            .int("perPair", \.anchorsPerPair, 1...256, "Anchors x0 per pair (k)."),
            .choice("source", \.anchorSource, "The reference model's samples of the explicit prompt, or the policy's of the implicit one."),
            .int("refreshEvery", \.anchorRefreshEvery, 1...1_000_000, "Steps between redraws of policy anchors."),
            .bool("verify", \.verifyAnchors, "Train on reference anchors the world verifier accepts (explicit prompts must be captions)."),
            .int("maxDraws", \.maxAnchorDraws, 1...1024, "Most anchors drawn per pair to find perPair that verify (null: 3 × perPair)."),
        ] + AnchorBank.Settings.specs.map { $0.lifted(\.anchors) }, "Anchor images x0 (DESIGN §4.2): how many, from where, how sampled."),
        .number("preserveWeight", \.preserveWeight, 0...1e6, "λ_keep of the keep terms (explicit prompt and unconditional input)."),
        .int("keepPerStep", \.keepPerStep, 0...1024, "Pairs of each batch whose keep rows are trained (null: all); fewer favours matching."),
        OptionSpec("matchTarget", .choice(MatchTarget.allCases.map(\.rawValue)),
                   "The implicit prompt's target: the reference's velocity (DK-DM) or the anchor's own, ε − x0 (not DK-DM).",
                   get: { .string(($0.matchTarget ?? .reference).rawValue) },
                   set: { o, v in o.matchTarget = v.string == MatchTarget.reference.rawValue ? nil : MatchTarget(rawValue: v.string!) }),
        .group("replay", [
            .int("perStep", \.replayPerStep, 0...1024, "Random explicit captions replayed per step in the keep term."),
            .int("pool", \.replayPool, 1...100_000, "Distinct replay captions drawn for the run (at most perStep × steps)."),
            .choice("source", \.replaySource, "Their targets: the reference's samples of the caption, or the world's renders."),
            .number("weight", \.replayWeight, 0...1e6, "Weight of the replay term (null: preserveWeight)."),
        ], "Random explicit captions in the keep term, to hold the explicit prompts the implicit ones match."),
        TimeSampling.spec(\.timeSampling),
        .group("lora", LoRASettings.specs.map { $0.lifted(\.lora) }, component: "Lora", LoRASettings.doc),
        .bool("freshAdapter", \.freshAdapter, "Start from a new adapter (of lora's shape) even if the model has one."),
        .seed(\.seed, "Seed of the run."),
        .group("dislocation", \.dislocation, DislocationMeasurement.Settings.specs, fresh: .init(), orBool: true, component: "DislocationSettings",
               "Measure the pairs' knowledge dislocation before and after training."),
    ]
}
