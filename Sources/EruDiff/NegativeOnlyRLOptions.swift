/// The settings of a NO-RL run (DESIGN §4.3; the daemon's `rlStep` parameters).
public struct NegativeOnlyRLOptions: Codable, Equatable, Sendable {
    /// What v_old, the sampling policy, is.
    public enum OldPolicy: Codable, Equatable, Sendable {
        /// A copy of the adapter taken at the start of each round (it sampled the round's groups).
        case snapshot
        /// An exponential moving average of the adapter, updated after every step with this decay; it
        /// samples each round's groups.
        case ema(decay: Float)
    }

    /// What the KL term holds the policy to.
    public enum KLReference: String, CaseIterable, Codable, Equatable, Sendable {
        /// The model with the adapter off (DESIGN §4.3's v_ref). After DK-DM this pulls the implicit
        /// prompts back to what the base model drew for them.
        case base
        /// The adapter as it was when the run started: a trust region around the model NO-RL was
        /// given (e.g. the DK-DM adapter), so what an earlier method taught stays.
        case start
    }

    // The options of the table below (`specs`) are documented there.
    public var groupSize = 8
    /// One round by default, as DESIGN §7 fixes; the study's NO-RL takes 4 (scripts/demo.json).
    public var rounds = 1
    public var stepsPerRound = 16
    public var batchSize = 32
    public var promptsPerRound: Int? = 32
    public var beta: Float = 1
    public var advantageClip: Float = 2
    public var learningRate: Float = 3e-4
    public var weightDecay: Float = 0
    public var maxGradNorm: Float? = 1
    public var rowsPerPass = 16
    public var klWeight: Float = 0
    public var klReference: KLReference = .base
    /// On by default: the groups are sampled with guidance, and training the conditional velocity on them
    /// pushes every negative against the guidance direction too (docs/experiments/2026-12-05-where-dkdm-stops.md).
    public var guidedPolicy = true
    /// The knowledge score by default; `.graded` was measured and not adopted
    /// (docs/experiments/2026-12-06-paraphrases-and-norl-knobs.md).
    public var reward: WorldReward = .score
    public var sampling = SamplingSettings(steps: 16, guidance: 4, sdeNoise: 0.7)
    public var timeSampling: TimeSampling = .uniform
    public var oldPolicy: OldPolicy = .snapshot
    public var lora = LoRASettings()
    public var freshAdapter = false
    public var seed: UInt64 = 0

    public init() {}

    public func validate() throws {
        try Self.specs.check(self, "rlStep")
    }

    /// The options of `rlStep` (DESIGN §4.3), each declared once (`OptionSpec`).
    public static let specs: [OptionSpec<Self>] = [
        .int("groupSize", \.groupSize, 2...1024, "Images G per prompt."),
        .int("rounds", \.rounds, 0...100_000, "Sample-score-update rounds (one with samples)."),
        .int("stepsPerRound", \.stepsPerRound, 0...100_000, "Optimisation steps per round over that round's samples."),
        .int("batchSize", \.batchSize, 1...1024, "Samples per step."),
        .int("rowsPerPass", \.rowsPerPass, 1...4096, "Rows per forward/backward pass, whose gradients add up (bounds memory)."),
        .int("promptsPerRound", \.promptsPerRound, 1...1_000_000, "Prompts sampled per round (null: all of them every round)."),
        OptionSpec("reward", .choice(["world", "world-graded"]), "The world verifier's knowledge score, or graded: a wrong shape earns half its fit.",
                   get: { .string($0.reward == .score ? "world" : "world-graded") }, set: { o, v in o.reward = v.string == "world" ? .score : .graded }),
        .number("beta", \.beta, 1e-6...1e6, "β of the implicit policies v± = v_old ± β·(v_θ − v_old)."),
        .number("advantageClip", \.advantageClip, 1e-6...1e6, "A_max: advantages are clipped to ±A_max before the negative-only cut."),
    ] + AdapterOptimizer.specs(\.learningRate, \.weightDecay, \.maxGradNorm) + [
        .number("klWeight", \.klWeight, 0...1e6, "λ_KL of ‖v_θ − v_ref‖² (0: no reference pass); towards the base it undoes part of DK-DM."),
        .choice("klReference", \.klReference, "v_ref: the model with the adapter off, or the adapter as this call found it (a trust region)."),
        .bool("guidedPolicy", \.guidedPolicy, "Train the guided velocity that sampled the groups (the unconditional branch held) instead of the conditional one."),
    ] + SamplingSettings.specs(steps: "samplingSteps", adapter: false).map { $0.lifted(\.sampling) } + [
        TimeSampling.spec(\.timeSampling),
        OptionSpec("emaDecay", .number(0...0.999999), nullable: true, "v_old as an EMA of the adapter with this decay (null: a copy per round).",
                   get: { if case .ema(let d) = $0.oldPolicy { return .number(OptionSpec<Self>.decimal(d)) }; return nil },
                   set: { o, v in o.oldPolicy = v.number.map { .ema(decay: Float($0)) } ?? .snapshot }),
        .group("lora", LoRASettings.specs.map { $0.lifted(\.lora) }, component: "Lora", LoRASettings.doc),
        .bool("freshAdapter", \.freshAdapter, "Start from a new adapter (of lora's shape) even if the model has one."),
        .seed(\.seed, "Seed of the run."),
    ]
}
