import Diffusion
import Foundation
import Models
import Tensors
import World

/// NO-RL, negative-only reinforcement learning for flow models (DESIGN §4.3), the negative-only
/// variant of DiffusionNFT's likelihood-free update. Per round:
///
/// 1. sample a group of G images per prompt with the sampling policy v_old (ODE or SDE sampler);
/// 2. reward each (world verifier against the prompt's expectation, or the caller's rewards), take
///    negative-only advantages and optimality weights ρ_j (`NegativeAdvantage`); groups whose rewards
///    are all equal are skipped;
/// 3. for `stepsPerRound` steps, on a batch of the kept samples with fresh t, ε:
///    x_t = (1 − t)·x0 + t·ε, u = ε − x0, v± = v_old ± β·(v_θ − v_old),
///    L = mean_j [ρ_j‖v⁺ − u‖² + (1 − ρ_j)‖v⁻ − u‖²] + λ_KL‖v_θ − v_ref‖²
///    (v_ref: the base model, or with `klReference: .start` the adapter the run began with).
///
/// v_old is a second adapter (a snapshot taken at the start of the round, or an EMA), run without
/// gradient in the shared inference workspace, like the reference (adapter off). A below-average
/// sample pushes the policy's velocity away from its own target u; the others hold it at v_old.
/// With `guidedPolicy` every v above is the guided velocity v(∅) + w·(v(c) − v(∅)) that sampled the
/// groups, with the unconditional branch held at v_old's.
public final class NegativeOnlyRL: Procedure {
    public typealias Options = NegativeOnlyRLOptions

    public struct RoundStats: Codable, Equatable, Sendable {
        public var rewardMean: Double
        public var rewardStd: Double
        /// Samples with A < 0.
        public var negatives: Int
        public var groups: Int
        /// Groups with equal rewards, not trained on.
        public var skippedGroups: Int
        /// Mean loss of the round's steps (nil when it had none).
        public var meanLoss: Float?
    }

    public struct Result: Codable, Equatable, Sendable {
        public var rounds: Int
        /// Over every sample of every round.
        public var rewardMean: Double
        public var rewardStd: Double
        public var negatives: Int
        /// Mean loss over every step taken (nil when none was).
        public var loss: Float?
        public var losses: [Float]
        public var perRound: [RoundStats]
        public var elapsedSeconds: Double
    }

    enum Stage: String, Codable { case prepare, sampling, rewards, training, done }

    public let model: FlowModel
    public let options: Options
    /// Prompts with expectations (world rewards), or the prompts of the caller's groups.
    public let prompts: [RLPrompt]
    private let groups: [RLGroup]?

    private(set) var stage: Stage = .prepare
    public private(set) var round = 0
    private var stepInRound = 0
    private var globalStep = 0
    private var elapsed = 0.0
    private var stats: [RoundStats] = []
    private var allRewards: [Double] = []
    private var losses: [Float] = []
    private var roundLosses: [Float] = []

    private var optimizer: AdapterOptimizer!
    private var old: LoRAAdapter!
    /// The adapter as the run found it: the KL term's reference when `klReference` is `.start`.
    private var start: LoRAAdapter?
    private var text: TextConditioning!
    private var rows: ConditioningRows!
    private var sampling: BatchedSampling?
    private var roundPrompts: [Int] = []
    private var roundX0: Tensor?
    private var roundRewards: [Double] = []
    // The round's training set: kept samples, their prompt and ρ.
    private var trainX0: Tensor?
    private var trainPrompt: [Int] = []
    private var trainRho: [Float] = []
    private var xt, u, vOld, vRef, noise: Tensor!
    /// With `guidedPolicy`: the empty prompt in every row, v_old's guided velocity, and the guided
    /// v_θ of one pass.
    private var emptyRows: ConditioningRows?
    private var vOldGuided, vThetaGuided: Tensor?

    /// A run with world rewards: groups are sampled for `prompts` and scored by the verifier.
    public init(model: FlowModel, prompts: [RLPrompt], options: Options = Options()) throws {
        try options.validate()
        guard !prompts.isEmpty else { throw EruDiffError.invalidArgument("rlStep: no prompts") }
        self.model = model
        self.options = options
        self.prompts = prompts
        self.groups = nil
    }

    /// One round on samples the caller drew and rewarded: no sampling, no verifier.
    public init(model: FlowModel, groups: [RLGroup], options: Options = Options()) throws {
        var o = options
        o.rounds = 1
        try o.validate()
        guard !groups.isEmpty else { throw EruDiffError.invalidArgument("rlStep: no sample groups") }
        let pk = model.packing
        for (i, g) in groups.enumerated() {
            guard !g.prompt.isEmpty else { throw EruDiffError.invalidArgument("rlStep: group \(i) has an empty prompt") }
            guard !g.rewards.isEmpty, g.images.count == g.rewards.count * pk.pixelCount else {
                throw EruDiffError.invalidArgument("rlStep: group \(i) has \(g.rewards.count) rewards for images of shape \(g.images.shape) (need [G, \(pk.height), \(pk.width), \(pk.channels)])")
            }
            guard g.rewards.allSatisfy({ $0.isFinite }) else {
                throw EruDiffError.invalidArgument("rlStep: group \(i) has a non-finite reward")
            }
        }
        self.model = model
        self.options = o
        self.prompts = groups.map { RLPrompt(text: $0.prompt, expect: Attributes()) }
        self.groups = groups
    }

    public var isFinished: Bool { stage == .done }

    public var output: Result? {
        guard stage == .done else { return nil }
        let (m, s) = NegativeAdvantage.meanStd(allRewards)
        return Result(rounds: stats.count, rewardMean: m, rewardStd: s, negatives: stats.reduce(0) { $0 + $1.negatives },
                      loss: losses.isEmpty ? nil : losses.reduce(0, +) / Float(losses.count), losses: losses,
                      perRound: stats, elapsedSeconds: elapsed)
    }

    public func next() throws -> ProcedureProgress? {
        guard stage != .done else { return nil }
        let started = Date()
        defer { elapsed += Date().timeIntervalSince(started) }
        switch stage {
        case .prepare:
            try prepare()
            stage = groups == nil ? .sampling : .rewards
            if options.rounds == 0 { stage = .done }
            return progress("prepare", 1, 1)
        case .sampling:
            if sampling == nil { try startRound() }
            let s = sampling!
            let p = try s.next()
            if s.isFinished {
                roundX0 = s.tokens
                sampling = nil
                stage = .rewards
            }
            return progress("sampling", p?.done ?? 1, p?.total ?? 1)
        case .rewards:
            try computeRewards()
            stage = .training
            return progress("rewards", 1, 1)
        case .training:
            if stepInRound >= options.stepsPerRound {
                finishRound()
                return progress("round", round, options.rounds)
            }
            let loss = try trainStep()
            stepInRound += 1
            globalStep += 1
            return progress("training", stepInRound, options.stepsPerRound, loss: loss)
        case .done:
            return nil
        }
    }

    private func progress(_ stageName: String, _ done: Int, _ total: Int, loss: Float? = nil) -> ProcedureProgress {
        let rounds = Double(max(options.rounds, 1))
        var within: Double
        switch stage {
        case .prepare, .sampling: within = 0.5 * Double(done) / Double(max(total, 1))
        case .rewards: within = 0.5
        case .training: within = 0.5 + 0.5 * Double(stepInRound) / Double(max(options.stepsPerRound, 1))
        case .done: within = 1
        }
        if stage == .sampling && sampling == nil && roundX0 == nil { within = 0 }
        let f = stage == .done ? 1 : (Double(round) + within) / rounds
        return ProcedureProgress(stage: stageName, done: done, total: total, fraction: f, loss: loss)
    }

    /// The guidance w of the trained velocity: the sampler's with `guidedPolicy`, else 1.
    private var guidanceScale: Float { options.guidedPolicy ? (options.sampling.guidance ?? 1) : 1 }

    // MARK: Rounds

    private func prepare() throws {
        guard optimizer == nil else { return }
        let pk = model.packing, b = options.batchSize
        optimizer = try AdapterOptimizer(model: model, lora: options.lora, fresh: options.freshAdapter, rows: b,
                                         rowsPerPass: options.rowsPerPass, schedule: LearningRateSchedule(peak: options.learningRate),
                                         weightDecay: options.weightDecay, maxGradNorm: options.maxGradNorm)
        let adapter = optimizer.adapter
        old = adapter.zerosLike()
        old.copy(from: adapter)
        if options.klReference == .start && options.klWeight > 0 {
            start = adapter.zerosLike()
            start!.copy(from: adapter)
            start!.enabled = true
        }
        text = try model.encode(prompts.map(\.text))
        rows = ConditioningRows(capacity: b, model: model)
        xt = Tensor(zeros: [b, pk.tokens, pk.tokenChannels])
        u = Tensor(zeros: [b, pk.tokens, pk.tokenChannels])
        vOld = Tensor(zeros: [b, pk.tokens, pk.tokenChannels])
        vRef = Tensor(zeros: [b, pk.tokens, pk.tokenChannels])
        if guidanceScale != 1 {
            let empty = try model.unconditional()
            let e = ConditioningRows(capacity: b, model: model)
            for row in 0..<b { e.set(row, from: empty, index: 0) }
            emptyRows = e
            vOldGuided = Tensor(zeros: [b, pk.tokens, pk.tokenChannels])
            vThetaGuided = Tensor(zeros: [min(b, options.rowsPerPass), pk.tokens, pk.tokenChannels])
        }
        noise = Tensor(zeros: [pk.tokens * pk.tokenChannels])
        if let groups {
            let per = pk.tokens * pk.tokenChannels
            let total = groups.reduce(0) { $0 + $1.rewards.count }
            let x0 = Tensor(zeros: [total, pk.tokens, pk.tokenChannels])
            var k = 0
            for (i, g) in groups.enumerated() {
                let packed = pk.pack(g.images)
                (x0.data + k * per).update(from: packed.data, count: packed.count)
                k += g.rewards.count
                roundPrompts.append(i)
            }
            roundX0 = x0
            roundRewards = groups.flatMap(\.rewards)
        }
    }

    private func startRound() throws {
        if options.oldPolicy == .snapshot { old.copy(from: optimizer.adapter) }
        var rng = RNG(seed: SeedHash.seed(options.seed, purpose: "norl.round"), stream: UInt64(round))
        let n = min(options.promptsPerRound ?? prompts.count, prompts.count)
        roundPrompts = n == prompts.count ? Array(0..<n) : Array(rng.permutation(prompts.count).prefix(n)).sorted()
        var req: [BatchedSampling.Request] = []
        for i in roundPrompts {
            for j in 0..<options.groupSize {
                req.append(.init(prompt: prompts[i].text, seed: SeedHash.seed(options.seed, "\(round)|\(i)|" + prompts[i].text, j)))
            }
        }
        var settings = options.sampling
        settings.useAdapter = true
        let s = try BatchedSampling(model: model, requests: req, settings: settings)
        old.enabled = true
        s.adapterOverride = old  // the sampling policy v_old
        sampling = s
    }

    /// Rewards (world verifier unless the caller gave them), advantages, ρ, and the training set.
    private func computeRewards() throws {
        let pk = model.packing, per = pk.tokens * pk.tokenChannels
        guard let x0 = roundX0 else { throw EruDiffError.notFinished("NO-RL sampling") }
        if groups == nil {
            let images = pk.unpack(x0)
            let verifier = Verifier()
            roundRewards = []
            for (k, i) in roundPrompts.enumerated() {
                for j in 0..<options.groupSize {
                    let idx = k * options.groupSize + j
                    let v = try verifier.verify(signedUnit: images.data + idx * pk.pixelCount, width: pk.width, height: pk.height)
                    roundRewards.append(options.reward.reward(v, expected: prompts[i].expect))
                }
            }
        }
        var keptX: [Int] = [], negatives = 0, skipped = 0, start = 0
        trainPrompt = []; trainRho = []
        let aMax = Double(options.advantageClip)
        for (k, i) in roundPrompts.enumerated() {
            let g = groups?[k].rewards.count ?? options.groupSize
            let r = Array(roundRewards[start..<(start + g)])
            if let adv = NegativeAdvantage.advantages(r, clip: aMax) {
                for (j, a) in adv.enumerated() {
                    keptX.append(start + j)
                    trainPrompt.append(i)
                    trainRho.append(Float(NegativeAdvantage.optimality(a, clip: aMax)))
                    if a < 0 { negatives += 1 }
                }
            } else {
                skipped += 1
            }
            start += g
        }
        let t = Tensor(zeros: [max(keptX.count, 1), pk.tokens, pk.tokenChannels])
        for (row, s) in keptX.enumerated() { (t.data + row * per).update(from: x0.data + s * per, count: per) }
        trainX0 = keptX.isEmpty ? nil : t
        allRewards += roundRewards
        let (m, s) = NegativeAdvantage.meanStd(roundRewards)
        stats.append(RoundStats(rewardMean: m, rewardStd: s, negatives: negatives, groups: roundPrompts.count,
                                skippedGroups: skipped, meanLoss: nil))
        roundLosses = []
        stepInRound = 0
    }

    private func finishRound() {
        if !roundLosses.isEmpty { stats[stats.count - 1].meanLoss = roundLosses.reduce(0, +) / Float(roundLosses.count) }
        trainX0 = nil; roundX0 = nil
        round += 1
        stage = round >= options.rounds ? .done : .sampling
    }

    // MARK: Training

    /// One step on a batch of the round's kept samples; nil (and no update) when every group was
    /// skipped.
    private func trainStep() throws -> Float? {
        guard let x0 = trainX0, !trainRho.isEmpty else { return nil }
        let pk = model.packing, per = pk.tokens * pk.tokenChannels
        let s = trainRho.count, b = options.batchSize
        var rng = RNG(seed: SeedHash.seed(options.seed, purpose: "norl.step"), stream: UInt64(globalStep))
        let order = b <= s ? Array(rng.permutation(s).prefix(b)) : (0..<b).map { _ in rng.int(below: s) }
        var times = [Float](repeating: 0, count: b), rho = [Float](repeating: 0, count: b)
        for (row, j) in order.enumerated() {
            let t = options.timeSampling.draw(&rng)
            rng.fillNormal(noise.data, count: per)
            let src = x0.data + j * per
            FlowMatching.noisy(x0: src, noise: noise.data, t: t, into: xt.data + row * per, count: per)
            FlowMatching.velocity(x0: src, noise: noise.data, into: u.data + row * per, count: per)
            rows.set(row, from: text, index: trainPrompt[j])
            times[row] = t
            rho[row] = trainRho[j]
        }
        let input = { (s: Int, n: Int) in self.rows.input(self.xt, from: s, rows: n, times: times) }
        // v_old: the sampling policy's adapter swapped in for no-grad passes.
        try model.forwardInChunks(rows: b, adapter: old, into: vOld.data, input: input)
        let kl = options.klWeight
        if kl > 0 {
            // v_ref: the base model (adapter off), or the adapter the run started from.
            try model.forwardInChunks(rows: b, adapter: start, into: vRef.data, input: input)
        }
        let w = guidanceScale
        if let emptyRows, let vg = vOldGuided {
            // v_old's guided velocity, and the reference moved with it: v_ref^g − v^g = w·(v_ref − v).
            try model.forwardInChunks(rows: b, adapter: old, into: vg.data) { s, n in
                emptyRows.input(self.xt, from: s, rows: n, times: times)
            }
            for i in 0..<(b * per) {
                let g = vg.data[i] + w * (vOld.data[i] - vg.data[i])
                if kl > 0 { vRef.data[i] = g + w * (vRef.data[i] - vOld.data[i]) }
                vg.data[i] = g
            }
        }
        var total = 0.0
        try optimizer.passes(rows: b, input: input) { out, start, gradient in
            let n = out.shape[0]
            var theta = UnsafePointer(out.data), policyOld = UnsafePointer(vOld.data + start * per)
            if let vg = vOldGuided, let tg = vThetaGuided {
                // v_θ^g = v_old^g + w·(v_θ − v_old): the conditional branch moves, the unconditional is held.
                let o = vOld.data + start * per, g = vg.data + start * per
                for i in 0..<(n * per) { tg.data[i] = g[i] + w * (out.data[i] - o[i]) }
                theta = UnsafePointer(tg.data); policyOld = UnsafePointer(g)
            }
            let l = NegativeOnlyRL.lossAndGradient(vTheta: theta, vOld: policyOld,
                                                   vRef: kl > 0 ? UnsafePointer(vRef.data + start * per) : nil,
                                                   target: u.data + start * per, rho: Array(rho[start..<(start + n)]), perSample: per,
                                                   beta: options.beta, klWeight: kl, gradient: gradient, normalizer: b * per)
            if w != 1 { for i in 0..<(n * per) { gradient[i] *= w } }  // ∂v_θ^g/∂v_θ = w
            total += Double(l) * Double(n * per)
        }
        let loss = Float(total / Double(b * per))
        optimizer.step(at: globalStep)
        if case let .ema(d) = options.oldPolicy { old.flat.average(towards: optimizer.adapter.flat, decay: d) }
        losses.append(loss)
        roundLosses.append(loss)
        return loss
    }

    /// The NO-RL loss of a batch of `rho.count` samples and its gradient with respect to v_θ (written
    /// into `gradient`): with v± = v_old ± β·(v_θ − v_old) and n the number of elements,
    ///     L = (1/n)·Σ_j Σ_k [ρ_j (v⁺ − u)² + (1 − ρ_j)(v⁻ − u)² + λ (v_θ − v_ref)²],
    ///     ∂L/∂v_θ = (2/m)·[ρ_j β (v⁺ − u) − (1 − ρ_j) β (v⁻ − u) + λ (v_θ − v_ref)],
    /// m = `normalizer` (default n): the element count of the whole batch when this is one pass of it.
    public static func lossAndGradient(vTheta: UnsafePointer<Float>, vOld: UnsafePointer<Float>, vRef: UnsafePointer<Float>?,
                                       target: UnsafePointer<Float>, rho: [Float], perSample: Int, beta: Float,
                                       klWeight: Float, gradient: UnsafeMutablePointer<Float>, normalizer: Int? = nil) -> Float {
        let n = rho.count * perSample, vPlus = Tensor(zeros: [n]), vMinus = Tensor(zeros: [n])
        for i in 0..<n {
            vPlus[i] = (1 - beta) * vOld[i] + beta * vTheta[i]
            vMinus[i] = (1 + beta) * vOld[i] - beta * vTheta[i]
        }
        var terms: [WeightedMSE.Term] = [.init(vPlus.data, target, weights: rho, slope: beta),
                                         .init(vMinus.data, target, weights: rho.map { 1 - $0 }, slope: -beta)]
        if let vRef { terms.append(.init(vTheta, vRef, weights: [Float](repeating: klWeight, count: rho.count))) }
        var mse = WeightedMSE(width: perSample, groups: [.init(rows: (normalizer ?? n) / perSample)])
        return Float(mse.add(terms, first: 0, rows: rho.count, gradient: gradient) / Double(n))
    }

    // MARK: Saving

    /// Adds the run's state to `archive` under `prefix`: stage, round, steps, statistics, adapter,
    /// AdamW moments, v_old, and the round's training set when training is under way. Sampling in
    /// progress restarts on resume (it is deterministic).
    public func save(into a: StateArchive, prefix: String) throws {
        let s: Stage = stage == .rewards && groups == nil ? .sampling : stage
        a.set(prefix + "stage", string: s.rawValue)
        a.set(prefix + "round", string: String(round))
        a.set(prefix + "step_in_round", string: String(stepInRound))
        a.set(prefix + "global_step", string: String(globalStep))
        a.set(prefix + "elapsed", string: String(elapsed))
        try a.set(prefix + "stats", json: stats)
        try a.set(prefix + "rewards", json: allRewards)
        try a.set(prefix + "losses", json: losses)
        try a.set(prefix + "round_losses", json: roundLosses)
        guard let optimizer else { return }
        optimizer.save(into: a, prefix: prefix)
        a.set(prefix + "old", old.flat)
        if let start { a.set(prefix + "start", start.flat) }
        if s == .training {
            try a.set(prefix + "train_prompt", json: trainPrompt)
            try a.set(prefix + "train_rho", json: trainRho)
            if let trainX0 { a.set(prefix + "train_x0", trainX0) }
        }
    }

    /// Restores a state saved by `save(into:prefix:)` into a run made with the same prompts and
    /// options; call it before the first `next()`.
    public func restore(from a: StateArchive, prefix: String) throws {
        guard let s = Stage(rawValue: try a.string(prefix + "stage")) else {
            throw EruDiffError.badState(path: a.source, problem: "unknown NO-RL stage")
        }
        if s == .prepare { return }
        try prepare()
        round = try a.int(prefix + "round")
        stepInRound = try a.int(prefix + "step_in_round")
        globalStep = try a.int(prefix + "global_step")
        elapsed = Double(try a.string(prefix + "elapsed")) ?? 0
        stats = try a.json(prefix + "stats")
        allRewards = try a.json(prefix + "rewards")
        losses = try a.json(prefix + "losses")
        roundLosses = try a.json(prefix + "round_losses")
        try optimizer.restore(from: a, prefix: prefix)
        try a.copy(prefix + "old", into: old.flat)
        if let start { try a.copy(prefix + "start", into: start.flat) }
        if s == .training {
            trainPrompt = try a.json(prefix + "train_prompt")
            trainRho = try a.json(prefix + "train_rho")
            guard trainPrompt.allSatisfy({ $0 >= 0 && $0 < prompts.count }), trainPrompt.count == trainRho.count else {
                throw EruDiffError.badState(path: a.source, problem: "NO-RL training set does not fit the prompts")
            }
            trainX0 = a.has(prefix + "train_x0") ? try a.tensor(prefix + "train_x0") : nil
        }
        stage = s
    }
}
