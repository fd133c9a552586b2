import Diffusion
import Foundation
import Models
import Tensors
import World

/// DK-DM, Diffusion Knowledge Distribution Matching (DESIGN §4.2): trains the model's LoRA adapter so
/// that under the implicit prompt c_i it predicts the velocity the frozen reference (adapter off)
/// predicts under the explicit anchor c_e, along the anchors' probability paths:
///
///     x_t = (1 − t)·x0 + t·ε,   x0 an anchor of the pair,
///     L = ‖v_θ(x_t,t,c_i) − sg[v_ref(x_t,t,c_e)]‖²
///       + λ_keep·(‖v_θ(x_t,t,c_e) − sg[v_ref(x_t,t,c_e)]‖² + ‖v_θ(x_t,t,∅) − sg[v_ref(x_t,t,∅)]‖²)
///       + λ_replay·‖v_θ(x_t',t',c_r) − sg[v_ref(x_t',t',c_r)]‖²   (random explicit captions c_r)
///
/// each squared norm a mean over its rows and elements. One step is one training forward and backward
/// over the stacked [implicit; explicit; unconditional; replay] batch and one no-grad reference forward
/// (adapter off, shared inference workspace) for all targets. Two options measured and not adopted,
/// verified anchors and the anchor target, live apart (`Variants`).
///
/// Units: the dislocation before, anchor sampling (rounds of it when verified), replay sampling,
/// each training step (and policy anchor refreshes), the dislocation after. Every step's draws come
/// from (seed, step), so a run resumed from `save(into:)` continues exactly as an uninterrupted one.
public final class DistributionMatching: Procedure {
    public typealias Options = DistributionMatchingOptions

    public typealias AnchorCheck = VerifiedAnchors.Report

    public struct Result: Codable, Equatable, Sendable {
        public var steps: Int
        /// Total loss per step.
        public var loss: [Float]
        /// The matching term alone (implicit rows) per step.
        public var matchLoss: [Float]
        public var dislocationBefore: DislocationReport?
        public var dislocationAfter: DislocationReport?
        /// What verification made of the anchors (nil: not verified).
        public var anchorCheck: AnchorCheck?
        /// Seconds spent in units (summed over resumptions).
        public var elapsedSeconds: Double
    }

    enum Stage: String, Codable {
        case prepare, dislocationBefore, anchors, replay, policyAnchors, training, dislocationAfter, done
    }

    public let model: FlowModel
    public let pairs: [KnowledgePair]
    public let options: Options
    public let bank: AnchorBank

    private(set) var stage: Stage = .prepare
    public private(set) var step = 0
    private var losses: [Float] = []
    private var matchLosses: [Float] = []
    private var before: DislocationReport?
    private var after: DislocationReport?
    private var elapsed = 0.0
    private var current: AnyUnitRunner?
    private var variants: Variants
    /// Set while `atStep` runs the setup stages: stops before the first training step.
    private var holdTraining = false

    // Set up in `prepare()`.
    private var optimizer: AdapterOptimizer!
    private var implicitText: TextConditioning!
    private var explicitText: TextConditioning!
    private(set) var replayCaptions: [String] = []
    private var replayText: TextConditioning?
    private var replayX0: Tensor?
    private var policyX0: Tensor?
    private var policyRound = -1
    private var trainText: ConditioningRows!
    private var refText: ConditioningRows!
    private var trainX, refX, refOut, targets, noise: Tensor!

    private var batch: Int { options.batchSize }
    /// Pairs of the batch that also carry the keep rows (explicit and unconditional): the first ones.
    private var keepRows: Int { options.preserveWeight > 0 ? min(options.keepPerStep ?? batch, batch) : 0 }
    private var replayRows: Int { options.replayPerStep }
    /// Distinct replay captions: the pool, or fewer when the run replays fewer rows in all (a short
    /// run does not sample hundreds of references it never uses).
    private var replayPoolSize: Int { min(options.replayPool, max(1, options.replayPerStep * options.steps)) }
    /// Training rows: [implicit b | explicit k | unconditional k | replay r].
    private var trainRows: Int { batch + 2 * keepRows + replayRows }
    /// Reference rows: [explicit b | unconditional k | replay r].
    private var refRows: Int { batch + keepRows + replayRows }

    /// A run on `pairs`; anchors come from (and go into) `bank`, a new one with `options.anchors` if nil.
    public init(model: FlowModel, pairs: [KnowledgePair], options: Options = Options(), bank: AnchorBank? = nil) throws {
        try options.validate()
        try KnowledgePair.validate(pairs)
        self.model = model
        self.pairs = pairs
        self.options = options
        self.bank = bank ?? AnchorBank(settings: options.anchors, model: model)
        variants = try Variants(options: options, pairs: pairs, packing: model.packing)
    }

    public var isFinished: Bool { stage == .done }

    public var output: Result? {
        guard stage == .done else { return nil }
        return Result(steps: step, loss: losses, matchLoss: matchLosses, dislocationBefore: before,
                      dislocationAfter: after, anchorCheck: variants.verified?.report, elapsedSeconds: elapsed)
    }

    public func next() throws -> ProcedureProgress? {
        guard stage != .done else { return nil }
        let started = Date()
        defer { elapsed += Date().timeIntervalSince(started) }
        while true {
            if let r = current {
                let p = try r.next()
                if r.isFinished {
                    current = nil
                    try finishStage(r)
                }
                if let p { return progress(p) }
                continue
            }
            switch stage {
            case .prepare:
                try prepare()
                stage = options.dislocation == nil ? .anchors : .dislocationBefore
                return progress(ProcedureProgress(stage: "prepare", done: 1, total: 1, fraction: 1))
            case .dislocationBefore, .dislocationAfter:
                current = AnyUnitRunner(try DislocationMeasurement(model: model, pairs: pairs, bank: bank,
                                                                   settings: options.dislocation!))
            case .anchors:
                if options.anchorSource == .reference, let f = try nextAnchorFill() {
                    current = AnyUnitRunner(f)
                } else {
                    stage = .replay
                }
            case .replay:
                if replayRows > 0 && replayX0 == nil {
                    try startReplay()
                    if current == nil { stage = .training }  // rendered: done at once
                } else {
                    stage = .training
                }
            case .policyAnchors:
                current = AnyUnitRunner(try policySampling())
            case .training:
                if step >= options.steps {
                    stage = options.dislocation == nil ? .done : .dislocationAfter
                    if stage == .done { return nil }
                    continue
                }
                if options.anchorSource == .policy, policyRound != step / options.anchorRefreshEvery {
                    stage = .policyAnchors
                    continue
                }
                if holdTraining { return nil }
                let loss = try trainStep()
                return progress(ProcedureProgress(stage: "training", done: step, total: options.steps, fraction: 0, loss: loss))
            case .done:
                return nil
            }
        }
    }

    /// Overall fraction: dislocation before 10%, anchors and replay 20%, training 60%, after 10%.
    private func progress(_ p: ProcedureProgress) -> ProcedureProgress {
        var q = p
        let trainShare = 0.6 * Double(step) / Double(max(options.steps, 1))
        switch stage {
        case .prepare, .dislocationBefore: q.fraction = 0.1 * p.fraction
        case .anchors, .replay: q.fraction = 0.1 + 0.2 * p.fraction
        case .policyAnchors, .training: q.fraction = 0.3 + trainShare
        case .dislocationAfter: q.fraction = 0.9 + 0.1 * p.fraction
        case .done: q.fraction = 1
        }
        return q
    }

    private func finishStage(_ r: AnyUnitRunner) throws {
        switch stage {
        case .dislocationBefore:
            before = r.result as? DislocationReport
            stage = .anchors
        case .dislocationAfter:
            after = r.result as? DislocationReport
            stage = .done
        case .anchors:
            break  // verified anchors may need another round of draws
        case .replay:
            let s = r.base as! BatchedSampling
            replayX0 = s.tokens
            stage = .training
        case .policyAnchors:
            let s = r.base as! BatchedSampling
            policyX0 = s.tokens
            if options.anchorSource == .policy { policyRound = step / options.anchorRefreshEvery }
            stage = .training
        default:
            break
        }
    }

    // MARK: Setup

    private func prepare() throws {
        guard optimizer == nil else { return }
        // Warm-up, then constant or a cosine to its floor at the last step.
        let schedule = LearningRateSchedule(peak: options.learningRate, warmupSteps: options.warmupSteps,
                                            floorFraction: options.finalLearningRateFraction, floorStep: options.steps - 1)
        optimizer = try AdapterOptimizer(model: model, lora: options.lora, fresh: options.freshAdapter, rows: trainRows,
                                         rowsPerPass: options.rowsPerPass, schedule: schedule, weightDecay: options.weightDecay,
                                         maxGradNorm: options.maxGradNorm)
        let pk = model.packing
        implicitText = try model.encode(pairs.map(\.implicit))
        explicitText = try model.encode(pairs.map(\.explicit))
        trainText = ConditioningRows(capacity: trainRows, model: model)
        refText = ConditioningRows(capacity: refRows, model: model)
        trainX = Tensor(zeros: [trainRows, pk.tokens, pk.tokenChannels])
        refX = Tensor(zeros: [refRows, pk.tokens, pk.tokenChannels])
        refOut = Tensor(zeros: [refRows, pk.tokens, pk.tokenChannels])
        targets = Tensor(zeros: [trainRows, pk.tokens, pk.tokenChannels])
        noise = Tensor(zeros: [pk.tokens * pk.tokenChannels])
        if replayRows > 0 {
            var rng = RNG(seed: SeedHash.seed(options.seed, purpose: "dkdm.replay"))
            var captions: [(text: String, attributes: Attributes)] = []
            for _ in 0..<replayPoolSize { captions.append(Caption.random(&rng)) }
            replayCaptions = captions.map(\.text)
            replayText = try model.encode(replayCaptions)
            if options.replaySource == .rendered {
                // Renders are cheap: made here, once, from their own stream.
                let images = Tensor(zeros: [captions.count, pk.height, pk.width, pk.channels])
                guard pk.height == Renderer.side, pk.width == Renderer.side, pk.channels == 3 else {
                    throw EruDiffError.invalidArgument("rendered replay needs 32×32 RGB images")
                }
                for (i, c) in captions.enumerated() {
                    var r = RNG(seed: SeedHash.seed(options.seed, c.text, i))
                    Renderer.render(c.attributes, rng: &r, into: images.data + i * pk.pixelCount)
                }
                replayX0 = pk.pack(images)
            }
        }
    }

    /// The next round of reference anchors to draw; nil when the bank holds all the run needs.
    private func nextAnchorFill() throws -> AnchorFill? {
        try variants.verified?.update(bank: bank, packing: model.packing)
        return try bank.fill(model: model, targets: variants.verified?.targets(bank: bank) ?? pairs.map { ($0.explicit, options.anchorsPerPair) })
    }

    private func startReplay() throws {
        guard options.replaySource == .reference else { return }
        var settings = bank.settings.sampling
        settings.useAdapter = false
        let req = replayCaptions.enumerated().map {
            BatchedSampling.Request(prompt: $0.element, seed: SeedHash.seed(options.seed ^ 0x5E91A7, $0.element, $0.offset))
        }
        current = AnyUnitRunner(try BatchedSampling(model: model, requests: req, settings: settings))
    }

    private func policySampling() throws -> BatchedSampling {
        let round = step / options.anchorRefreshEvery
        var settings = bank.settings.sampling
        settings.useAdapter = true
        var req: [BatchedSampling.Request] = []
        for p in pairs {
            for j in 0..<options.anchorsPerPair {
                req.append(.init(prompt: p.implicit, seed: SeedHash.seed(options.seed ^ UInt64(round + 1), p.implicit, j)))
            }
        }
        return try BatchedSampling(model: model, requests: req, settings: settings)
    }

    // MARK: Training

    /// The anchor x0 number `a` of pair `p` (packed tokens).
    private func anchor(pair p: Int, _ a: Int) throws -> UnsafePointer<Float> {
        if let px = policyX0 {
            return UnsafePointer(px.data + (p * options.anchorsPerPair + a) * bank.anchorSize)
        }
        guard let t = bank.anchor(pairs[p].explicit, a) else {
            throw EruDiffError.invalidArgument("anchor \(a) of '\(pairs[p].explicit)' missing")
        }
        return UnsafePointer(t.data)
    }

    /// Fills the step's batch: its draws come from (seed, step) alone.
    private func assemble() throws -> [Float] {
        let b = batch, k = keepRows, r = replayRows, per = bank.anchorSize
        var rng = RNG(seed: SeedHash.seed(options.seed, purpose: "dkdm.step"), stream: UInt64(step))
        let order = rng.permutation(pairs.count)
        var times = [Float](repeating: 0, count: trainRows)
        let u = try model.unconditional()
        for i in 0..<b {
            let p = b <= pairs.count ? order[i] : rng.int(below: pairs.count)
            let x0 = try anchor(pair: p, variants.verified?.anchor(pair: p, &rng) ?? rng.int(below: options.anchorsPerPair))
            let t = options.timeSampling.draw(&rng)
            rng.fillNormal(noise.data, count: per)
            let xt = trainX.data + i * per
            FlowMatching.noisy(x0: x0, noise: noise.data, t: t, into: xt, count: per)
            variants.noteVelocity(row: i, x0: x0, noise: noise.data, count: per)
            trainText.set(i, from: implicitText, index: p)
            refText.set(i, from: explicitText, index: p)
            refX.data.advanced(by: i * per).update(from: xt, count: per)
            times[i] = t
            if i < k {
                (trainX.data + (b + i) * per).update(from: xt, count: per)
                (trainX.data + (b + k + i) * per).update(from: xt, count: per)
                times[b + i] = t; times[b + k + i] = t
                trainText.set(b + i, from: explicitText, index: p)
                trainText.set(b + k + i, from: u, index: 0)
                refText.set(b + i, from: u, index: 0)
                (refX.data + (b + i) * per).update(from: xt, count: per)
            }
        }
        let t0 = b + 2 * k, r0 = b + k
        for j in 0..<r {
            let q = rng.int(below: replayCaptions.count)
            let t = options.timeSampling.draw(&rng)
            rng.fillNormal(noise.data, count: per)
            let xt = trainX.data + (t0 + j) * per
            FlowMatching.noisy(x0: replayX0!.data + q * per, noise: noise.data, t: t, into: xt, count: per)
            (refX.data + (r0 + j) * per).update(from: xt, count: per)
            trainText.set(t0 + j, from: replayText!, index: q)
            refText.set(r0 + j, from: replayText!, index: q)
            times[t0 + j] = t
        }
        return times
    }

    /// The total loss and the matching term of one step on the current batch; with `backward`, the
    /// adapter's gradients are accumulated into the optimizer's buffer (no update). The reference runs
    /// in passes of `model.maxInferenceRows`, the policy in passes of `options.rowsPerPass` whose
    /// gradients add up to the whole batch's.
    func lossAndGradient(times: [Float], backward: Bool) throws -> (total: Float, match: Float) {
        let b = batch, k = keepRows, per = bank.anchorSize
        // Targets: the reference (adapter off) under c_e, ∅ and c_r.
        let refTimes = Array(times[0..<b]) + Array(times[0..<k]) + Array(times[(trainRows - replayRows)...])
        let unused = variants.unusedReferenceRows(batch: b, keepRows: k)
        for rows in [0..<unused.lowerBound, unused.upperBound..<refRows] where !rows.isEmpty {
            let first = rows.lowerBound
            try model.forwardInChunks(rows: rows.count, adapter: nil, into: refOut.data + first * per) { s, n in
                refText.input(refX, from: first + s, rows: n, times: refTimes)
            }
        }
        targets.data.update(from: variants.anchorVelocity?.data ?? refOut.data, count: b * per)  // implicit rows: v_ref(c_e)
        (targets.data + b * per).update(from: refOut.data, count: k * per)  // explicit keep rows: v_ref(c_e)
        (targets.data + (b + k) * per).update(from: refOut.data + b * per, count: k * per)  // unconditional
        let t0 = b + 2 * k, r0 = b + k
        (targets.data + t0 * per).update(from: refOut.data + r0 * per, count: replayRows * per)

        // The parts of the stacked batch and their weights.
        let keep = options.preserveWeight
        var mse = WeightedMSE(width: per, groups: [.init(rows: b), .init(rows: k, weight: keep), .init(rows: k, weight: keep),
                                                   .init(rows: replayRows, weight: options.replayWeight ?? keep)])
        try optimizer.passes(rows: trainRows, backward: backward, input: { s, n in trainText.input(trainX, from: s, rows: n, times: times) }) {
            out, start, gradient in
            mse.add([.init(out.data, targets.data + start * per)], first: start, rows: out.shape[0], gradient: gradient)
        }
        return (mse.loss, mse.mean(ofGroup: 0))
    }

    private func trainStep() throws -> Float {
        let times = try assemble()
        let (loss, match) = try lossAndGradient(times: times, backward: true)
        optimizer.step(at: step)
        losses.append(loss)
        matchLosses.append(match)
        step += 1
        return loss
    }

    // MARK: Checks

    /// The loss of the batch of step `step` at the adapter's current values, and (when `gradient`)
    /// the adapter's gradient, without updating anything: for gradient checks and diagnostics.
    public func probe(step s: Int, gradient: Bool) throws -> (loss: Float, gradient: Tensor?) {
        try atStep(s) { times in
            optimizer.gradients.flat.zero()
            let (loss, _) = try lossAndGradient(times: times, backward: gradient)
            let g = gradient ? optimizer.gradients.flat.copy() : nil
            optimizer.gradients.flat.zero()
            return (loss, g)
        }
    }

    /// `body` on the batch of step `s` (its times), the run's step left as it was; the stages before
    /// training (anchors, replay) run first if they have not.
    private func atStep<T>(_ s: Int, _ body: ([Float]) throws -> T) throws -> T {
        holdTraining = true
        defer { holdTraining = false }
        while stage != .training && stage != .done && stage != .dislocationAfter { _ = try next() }
        let saved = step
        step = s
        defer { step = saved }
        return try body(try assemble())
    }

    /// Every row of step `s` (matching, explicit keep, unconditional keep, replay) as `lossAndGradient`
    /// trains them: each row's x_t, t and target, for tests of what each prompt is taught.
    func trainingRows(step s: Int) throws -> [(xt: [Float], t: Float, target: [Float])] {
        try atStep(s) { times in
            _ = try lossAndGradient(times: times, backward: false)
            let per = bank.anchorSize
            return (0..<trainRows).map { i in
                (Array(UnsafeBufferPointer(start: trainX.data + i * per, count: per)), times[i],
                 Array(UnsafeBufferPointer(start: targets.data + i * per, count: per)))
            }
        }
    }

    // MARK: Saving

    /// Adds the run's state (stage, step, adapter, AdamW moments, losses, dislocation before, replay and
    /// policy anchors; the bank when `includeBank`) to `archive` under `prefix`.
    public func save(into a: StateArchive, prefix: String, includeBank: Bool = true) throws {
        // A stage in progress restarts on resume (its units are deterministic); training resumes at its step.
        a.set(prefix + "stage", string: stage.rawValue)
        a.set(prefix + "step", string: String(step))
        a.set(prefix + "elapsed", string: String(elapsed))
        try a.set(prefix + "loss", json: losses)
        try a.set(prefix + "match_loss", json: matchLosses)
        if let before { try a.set(prefix + "dislocation_before", json: before) }
        if let after { try a.set(prefix + "dislocation_after", json: after) }
        if let optimizer { optimizer.save(into: a, prefix: prefix) }
        if let replayX0 { a.set(prefix + "replay_x0", replayX0) }
        if let policyX0 { a.set(prefix + "policy_x0", policyX0); a.set(prefix + "policy_round", string: String(policyRound)) }
        if includeBank { try bank.save(into: a, prefix: prefix + "bank.") }
    }

    /// Restores a state saved by `save(into:prefix:)` into a run made with the same options; call it
    /// before the first `next()`.
    public func restore(from a: StateArchive, prefix: String, includeBank: Bool = true) throws {
        guard let s = Stage(rawValue: try a.string(prefix + "stage")) else {
            throw EruDiffError.badState(path: a.source, problem: "unknown DK-DM stage")
        }
        if includeBank { try bank.restore(from: a, prefix: prefix + "bank.") }
        if s == .prepare { return }
        try prepare()
        try optimizer.restore(from: a, prefix: prefix)
        step = try a.int(prefix + "step")
        elapsed = Double(try a.string(prefix + "elapsed")) ?? 0
        losses = try a.json(prefix + "loss")
        matchLosses = try a.json(prefix + "match_loss")
        before = a.metadata[prefix + "dislocation_before"] != nil ? try a.json(prefix + "dislocation_before") : nil
        after = a.metadata[prefix + "dislocation_after"] != nil ? try a.json(prefix + "dislocation_after") : nil
        if a.has(prefix + "replay_x0") { replayX0 = try a.tensor(prefix + "replay_x0", count: replayPoolSize * bank.anchorSize) }
        if a.has(prefix + "policy_x0") {
            policyX0 = try a.tensor(prefix + "policy_x0", count: pairs.count * options.anchorsPerPair * bank.anchorSize)
            policyRound = try a.int(prefix + "policy_round")
        }
        try variants.verified?.update(bank: bank, packing: model.packing)  // the verdicts follow from the bank's images
        stage = s
    }
}

/// A sub-procedure of any output type, driven unit by unit inside another procedure.
final class AnyUnitRunner {
    let base: AnyObject
    private let step: () throws -> ProcedureProgress?
    private let finished: () -> Bool
    private let out: () -> Any?

    init<P: Procedure>(_ p: P) {
        base = p
        step = { try p.next() }
        finished = { p.isFinished }
        out = { p.output }
    }

    func next() throws -> ProcedureProgress? { try step() }
    var isFinished: Bool { finished() }
    var result: Any? { out() }
}
