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

    /// Samples per prompt (G).
    public var groupSize = 8
    public var rounds = 1
    /// Optimisation steps per round over that round's samples.
    public var stepsPerRound = 16
    /// Samples per step.
    public var batchSize = 16
    /// Prompts sampled per round (nil: all of them every round).
    public var promptsPerRound: Int? = nil
    /// β of the implicit policies v± = v_old ± β·(v_θ − v_old).
    public var beta: Float = 1
    /// A_max: advantages are clipped to ±A_max before the negative-only cut.
    public var advantageClip: Float = 2
    public var learningRate: Float = 3e-4
    public var weightDecay: Float = 0
    public var maxGradNorm: Float? = 1
    /// Rows per training forward/backward pass (a step's batch is cut into passes whose gradients
    /// add up; bounds the training workspace).
    public var rowsPerPass = 16
    /// λ_KL of the ‖v_θ − v_ref‖² term (0: no reference forward).
    public var klWeight: Float = 0.1
    /// The reference v_ref of the KL term.
    public var klReference: KLReference = .base
    /// Train the guided velocity (what sampled the groups) rather than the conditional one: with
    /// guidance w, v^g = v_old(∅) + w·(v(c) − v_old(∅)) stands for v in both implicit policies and the KL
    /// term, the unconditional branch held at v_old. The groups come from the guided sampler, so their
    /// images scatter around the guided velocity's prediction, not the conditional one's; pushed away
    /// from the conditional prediction, every negative also pushes against the guidance direction.
    /// No effect without guidance (w = 1). On by default: conditional-only training lowered accuracy on
    /// `mini`, even its own rollouts' reward (README, "Why NO-RL hurt").
    public var guidedPolicy = true
    /// The verifier's reward for sampled groups (the caller's rewards replace it). The knowledge
    /// score by default; `.graded` gained nothing on `mini` (README, "What the paraphrases rest on").
    public var reward: WorldReward = .score
    /// How groups are sampled (ODE, or SDE with a noise level for exploration).
    public var sampling = SamplingSettings(steps: 20, guidance: 4, sdeNoise: 0.7)
    public var timeSampling: TimeSampling = .uniform
    public var oldPolicy: OldPolicy = .snapshot
    /// The adapter created when the model has none, or when `freshAdapter`.
    public var lora = LoRASettings()
    public var freshAdapter = false
    public var seed: UInt64 = 0

    public init() {}

    public func validate() throws {
        func bad(_ s: String) -> EruDiffError { .invalidArgument("rlStep: " + s) }
        guard groupSize >= 2 && groupSize <= 1024 else { throw bad("groupSize must be in 2...1024") }
        guard rounds >= 0 && rounds <= 100_000 else { throw bad("rounds must be in 0...100000") }
        guard stepsPerRound >= 0 && stepsPerRound <= 100_000 else { throw bad("stepsPerRound must be in 0...100000") }
        guard batchSize > 0 && batchSize <= 1024 else { throw bad("batchSize must be in 1...1024") }
        if let p = promptsPerRound { guard p > 0 else { throw bad("promptsPerRound must be positive") } }
        guard beta.isFinite && beta > 0 else { throw bad("beta must be positive") }
        guard advantageClip.isFinite && advantageClip > 0 else { throw bad("advantageClip (A_max) must be positive") }
        guard learningRate.isFinite && learningRate >= 0 else { throw bad("learningRate must be ≥ 0") }
        guard weightDecay.isFinite && weightDecay >= 0 else { throw bad("weightDecay must be ≥ 0") }
        if let m = maxGradNorm { guard m.isFinite && m > 0 else { throw bad("maxGradNorm must be positive") } }
        guard rowsPerPass > 0 && rowsPerPass <= 4096 else { throw bad("rowsPerPass must be in 1...4096") }
        guard klWeight.isFinite && klWeight >= 0 else { throw bad("klWeight must be ≥ 0") }
        try sampling.validate("sampling")
        if case let .ema(d) = oldPolicy, !(d >= 0 && d < 1) { throw bad("EMA decay must be in [0, 1)") }
    }
}
