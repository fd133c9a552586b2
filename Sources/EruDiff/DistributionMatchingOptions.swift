/// The settings of a DK-DM run (DESIGN §4.2; the daemon's `matchDistributions` parameters).
public struct DistributionMatchingOptions: Codable, Equatable, Sendable {
    /// Where the anchors x0 come from.
    public enum AnchorSource: Codable, Equatable, Sendable {
        /// Reference samples (adapter off, with guidance) of the explicit prompt, drawn once.
        case reference
        /// Policy samples (adapter on, with guidance) of the implicit prompt, redrawn every `refreshEvery`
        /// steps (on-policy, like DMD).
        case policy(refreshEvery: Int)
    }

    /// Where the clean images of replayed explicit captions come from.
    public enum ReplaySource: String, Codable, Equatable, Sendable {
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
        /// reference that draws its explicit prompt wrong a quarter of the time does not teach the
        /// implicit one the misses too. Not DK-DM's distribution matching; an experiment beside it
        /// (README, "Verified samples as the target").
        case anchor
    }

    public var steps = 200
    /// Pairs per step.
    public var batchSize = 8
    public var learningRate: Float = 1e-3
    public var weightDecay: Float = 0
    /// Global gradient-norm clip (nil: none).
    public var maxGradNorm: Float? = 1
    /// Linear warm-up of the learning rate over this many steps.
    public var warmupSteps = 0
    /// Cosine decay of the learning rate to this fraction of its peak at the last step (nil: constant).
    public var finalLearningRateFraction: Float? = nil
    /// Rows per training forward/backward pass: a step's stacked batch is cut into passes of at most
    /// this many rows whose gradients add up (bounds the training workspace, about 7.8 MB per row at the
    /// `mini` size with 24 text tokens).
    public var rowsPerPass = 16
    /// Anchors per pair (k).
    public var anchorsPerPair = 4
    public var anchorSource: AnchorSource = .reference
    /// How anchors are sampled (ignored when the run is given a bank: the bank's settings win).
    public var anchors = AnchorBank.Settings()
    /// Train only on reference anchors the world verifier reads as their explicit caption states,
    /// drawing more of a pair's anchors until `anchorsPerPair` verify (`VerifiedAnchors`). Needs
    /// reference anchors and explicit prompts that are captions of the world.
    public var verifyAnchors = false
    /// Most anchors drawn per pair when verifying (nil: 3 × `anchorsPerPair`).
    public var maxAnchorDraws: Int? = nil
    /// The matching rows' target (nil: `.reference`, DK-DM as specified; optional so that the options
    /// of runs saved before it existed still decode).
    public var matchTarget: MatchTarget? = nil
    /// λ_keep: weight of the keep terms on the explicit prompt and on the unconditional input.
    public var preserveWeight: Float = 1
    /// Pairs of each batch whose keep rows (explicit and unconditional) are trained (nil: all of them).
    /// Fewer than `batchSize` spends more of a step on the matching rows: each keep row costs as much
    /// as a matching row, while the keep terms only have to hold what the adapter has not moved.
    public var keepPerStep: Int? = nil
    /// Random explicit captions replayed per step in the keep term (0: none).
    public var replayPerStep = 0
    /// Distinct replay captions drawn for the run.
    public var replayPool = 64
    public var replaySource: ReplaySource = .reference
    /// Weight of the replay term (nil: `preserveWeight`).
    public var replayWeight: Float? = nil
    /// Training times. Shifted towards noise by default (about half the draws above t = 0.9): an
    /// image's background and colours are decided at the start of sampling, and with pretraining's
    /// logit-normal times (1.4% of draws above 0.9) DK-DM on `mini` taught the implicit prompts their
    /// objects but left them on the base model's gray field (README, "DK-DM time sampling").
    public var timeSampling: TimeSampling = .shifted(8)
    /// The adapter created when the model has none, or when `freshAdapter`.
    public var lora = LoRASettings()
    /// Start from a new adapter even if the model has one (otherwise the current adapter is trained on).
    public var freshAdapter = false
    public var seed: UInt64 = 0
    /// The dislocation measured on the pairs before and after training (nil: not measured).
    public var dislocation: DislocationMeasurement.Settings? = DislocationMeasurement.Settings()

    public init() {}

    /// Throws naming the first option out of range.
    public func validate() throws {
        func bad(_ s: String) -> EruDiffError { .invalidArgument("matchDistributions: " + s) }
        guard steps >= 0 && steps <= 1_000_000 else { throw bad("steps must be in 0...1000000") }
        guard batchSize > 0 && batchSize <= 1024 else { throw bad("batchSize must be in 1...1024") }
        guard learningRate.isFinite && learningRate >= 0 else { throw bad("learningRate must be ≥ 0") }
        guard weightDecay.isFinite && weightDecay >= 0 else { throw bad("weightDecay must be ≥ 0") }
        if let m = maxGradNorm { guard m.isFinite && m > 0 else { throw bad("maxGradNorm must be positive") } }
        guard warmupSteps >= 0 else { throw bad("warmupSteps must be ≥ 0") }
        if let f = finalLearningRateFraction { guard f.isFinite && f >= 0 && f <= 1 else { throw bad("finalLearningRateFraction must be in [0, 1]") } }
        guard rowsPerPass > 0 && rowsPerPass <= 4096 else { throw bad("rowsPerPass must be in 1...4096") }
        guard anchorsPerPair > 0 && anchorsPerPair <= 256 else { throw bad("anchors.perPair must be in 1...256") }
        if case let .policy(k) = anchorSource, k <= 0 { throw bad("anchors.refreshEvery must be positive") }
        if verifyAnchors && anchorSource != .reference { throw bad("anchors.verify needs reference anchors") }
        if matchTarget == .anchor && anchorSource != .reference {
            throw bad("\"matchTarget\": \"anchor\" needs reference anchors (\"anchors.source\": \"reference\"; the policy's own samples would teach it nothing new)")
        }
        if let m = maxAnchorDraws {
            guard m >= anchorsPerPair && m <= 1024 else { throw bad("anchors.maxDraws must be in perPair...1024") }
        }
        try anchors.sampling.validate("anchors")
        guard preserveWeight.isFinite && preserveWeight >= 0 else { throw bad("preserveWeight must be ≥ 0") }
        if let k = keepPerStep { guard k >= 0 && k <= 1024 else { throw bad("keep.perStep must be in 0...1024") } }
        guard replayPerStep >= 0 && replayPerStep <= 1024 else { throw bad("replayPerStep must be in 0...1024") }
        guard replayPool > 0 && replayPool <= 100_000 else { throw bad("replayPool must be in 1...100000") }
        if let w = replayWeight { guard w.isFinite && w >= 0 else { throw bad("replayWeight must be ≥ 0") } }
        if case let .shifted(s) = timeSampling, !(s > 0) { throw bad("time shift must be positive") }
        if case let .logitNormal(_, s) = timeSampling, !(s > 0) { throw bad("logit-normal std must be positive") }
        if let d = dislocation {
            guard d.samplesPerPair > 0 && d.anchors > 0 else { throw bad("dislocation needs samples and anchors") }
        }
    }
}
