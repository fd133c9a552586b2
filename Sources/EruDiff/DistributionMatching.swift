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
/// (adapter off, shared inference workspace) for all targets.
///
/// With `verifyAnchors` the anchors x0 are only those the world verifier reads as their explicit
/// prompt states (`VerifiedAnchors`); the dislocation is still measured on the unverified ones. With
/// `matchTarget` `.anchor` the implicit rows' target is the anchor's own velocity ε − x0 instead of
/// v_ref(x_t,t,c_e) (fine-tuning on the anchors, not DK-DM; the keep and replay terms are unchanged),
/// and the reference forward leaves out the implicit rows that carry no keep rows.
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
    /// The anchors each pair trains on, when they are verified.
    private var verified: VerifiedAnchors?
    /// Set while `probe` runs the setup stages: stops before the first training step.
    private var holdTraining = false

    // Set up in `prepare()`.
    private var optimizer: AdapterOptimizer!
    private var workspace: FluxWorkspace!
    private var implicitText: TextConditioning!
    private var explicitText: TextConditioning!
    private(set) var replayCaptions: [String] = []
    private var replayText: TextConditioning?
    private var replayX0: Tensor?
    private var policyX0: Tensor?
    private var policyRound = -1
    private var trainText: ConditioningRows!
    private var refText: ConditioningRows!
    private var trainX, refX, refOut, targets, dOut, noise: Tensor!
    /// The matching rows' own flow velocities ε − x0, kept when `matchTarget` is `.anchor`.
    private var anchorVelocity: Tensor?

    private var batch: Int { options.batchSize }
    /// Pairs of the batch that also carry the keep rows (explicit and unconditional): the first ones.
    private var keepRows: Int { options.preserveWeight > 0 ? min(options.keepPerStep ?? batch, batch) : 0 }
    private var replayRows: Int { options.replayPerStep }
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
        if options.verifyAnchors {
            verified = try VerifiedAnchors(pairs: pairs, perPair: options.anchorsPerPair,
                                           maxDraws: options.maxAnchorDraws ?? 3 * options.anchorsPerPair)
        }
    }

    public var isFinished: Bool { stage == .done }

    public var output: Result? {
        guard stage == .done else { return nil }
        return Result(steps: step, loss: losses, matchLoss: matchLosses, dislocationBefore: before,
                      dislocationAfter: after, anchorCheck: verified?.report, elapsedSeconds: elapsed)
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
        let adapter = try options.lora.adapter(on: model, fresh: options.freshAdapter)
        optimizer = AdapterOptimizer(adapter: adapter, learningRate: options.learningRate, weightDecay: options.weightDecay,
                                     maxGradNorm: options.maxGradNorm)
        let pk = model.packing
        workspace = try FluxWorkspace(config: model.transformer.config, batch: min(trainRows, options.rowsPerPass),
                                      positions: pk.positions(textTokens: model.textTokens), training: true)
        implicitText = try model.encode(pairs.map(\.implicit))
        explicitText = try model.encode(pairs.map(\.explicit))
        let u = try model.unconditional()
        trainText = ConditioningRows(capacity: trainRows, like: u)
        refText = ConditioningRows(capacity: refRows, like: u)
        trainX = Tensor(zeros: [trainRows, pk.tokens, pk.tokenChannels])
        refX = Tensor(zeros: [refRows, pk.tokens, pk.tokenChannels])
        refOut = Tensor(zeros: [refRows, pk.tokens, pk.tokenChannels])
        targets = Tensor(zeros: [trainRows, pk.tokens, pk.tokenChannels])
        dOut = Tensor(zeros: [min(trainRows, options.rowsPerPass), pk.tokens, pk.tokenChannels])
        noise = Tensor(zeros: [pk.tokens * pk.tokenChannels])
        if options.matchTarget == .anchor { anchorVelocity = Tensor(zeros: [batch, pk.tokens, pk.tokenChannels]) }
        if replayRows > 0 {
            var rng = RNG(seed: SeedHash.seed(options.seed, purpose: "dkdm.replay"))
            var captions: [(text: String, attributes: Attributes)] = []
            for _ in 0..<options.replayPool { captions.append(Caption.random(&rng)) }
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
        guard var v = verified else {
            return try bank.fill(model: model, prompts: pairs.map(\.explicit), count: options.anchorsPerPair)
        }
        try v.update(bank: bank, packing: model.packing)
        verified = v
        return try bank.fill(model: model, targets: v.targets(bank: bank))
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
            let x0: UnsafePointer<Float>
            if let v = verified {
                let usable = v.usable(p)
                x0 = try anchor(pair: p, usable[rng.int(below: usable.count)])
            } else {
                x0 = try anchor(pair: p, rng.int(below: options.anchorsPerPair))
            }
            let t = options.timeSampling.draw(&rng)
            rng.fillNormal(noise.data, count: per)
            let xt = trainX.data + i * per
            FlowMatching.noisy(x0: x0, noise: noise.data, t: t, into: xt, count: per)
            if let v = anchorVelocity { FlowMatching.velocity(x0: x0, noise: noise.data, into: v.data + i * per, count: per) }
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
        let b = batch, k = keepRows, per = bank.anchorSize, c = model.transformer.config
        let guidance = { (n: Int) in c.guidanceEmbeds ? [Float](repeating: 1, count: n) : nil }
        // Targets: the reference (adapter off) under c_e, ∅ and c_r. With the anchor target the matching
        // rows past the keep rows (which reuse the first k) need no reference output.
        let refTimes = Array(times[0..<b]) + Array(times[0..<k]) + Array(times[(trainRows - replayRows)...])
        let unused = options.matchTarget == .anchor ? k..<b : b..<b
        for rows in [0..<unused.lowerBound, unused.upperBound..<refRows] where !rows.isEmpty {
            let first = rows.lowerBound
            try model.forwardInChunks(rows: rows.count, useAdapter: false, input: { s, n in
                let t = refText.view(from: first + s, rows: n)
                return FluxInput(image: refX.rowsView(first + s, n), text: t.states, pooled: t.pooled,
                                 timesteps: Array(refTimes[(first + s)..<(first + s + n)]), guidance: guidance(n))
            }) { out, s in (refOut.data + (first + s) * per).update(from: out.data, count: out.shape[0] * per) }
        }
        // Implicit rows: v_ref(c_e), or the anchors' own velocities.
        targets.data.update(from: anchorVelocity?.data ?? refOut.data, count: b * per)
        (targets.data + b * per).update(from: refOut.data, count: k * per)  // explicit keep rows: v_ref(c_e)
        (targets.data + (b + k) * per).update(from: refOut.data + b * per, count: k * per)  // unconditional
        let t0 = b + 2 * k, r0 = b + k
        (targets.data + t0 * per).update(from: refOut.data + r0 * per, count: replayRows * per)

        // Segments of the stacked batch and their weights.
        var segments: [(start: Int, rows: Int, weight: Float)] = [(0, b, 1)]
        if k > 0 { segments += [(b, k, options.preserveWeight), (b + k, k, options.preserveWeight)] }
        if replayRows > 0 { segments.append((t0, replayRows, options.replayWeight ?? options.preserveWeight)) }
        var sums = [Double](repeating: 0, count: segments.count)
        let micro = min(trainRows, options.rowsPerPass)
        var start = 0
        while start < trainRows {
            let n = min(micro, trainRows - start)
            let tt = trainText.view(from: start, rows: n)
            let out = try model.velocity(
                FluxInput(image: trainX.rowsView(start, n), text: tt.states, pooled: tt.pooled,
                          timesteps: Array(times[start..<(start + n)]), guidance: guidance(n)),
                workspace: workspace, useAdapter: true)
            for row in 0..<n {
                let r = start + row
                let seg = segments.lastIndex { $0.start <= r }!
                let o = out.data + row * per, g = targets.data + r * per, d = dOut.data + row * per
                let scale = 2 * segments[seg].weight / Float(segments[seg].rows * per)
                var sq: Float = 0
                for i in 0..<per {
                    let e = o[i] - g[i]
                    sq += e * e
                    d[i] = scale * e
                }
                sums[seg] += Double(sq)
            }
            if backward {
                model.outputGradient(fromVelocityGradient: dOut.rowsView(0, n), times: times[start..<(start + n)])
                try model.transformer.backward(outputGradient: dOut.rowsView(0, n), workspace: workspace,
                                               adapterGradients: optimizer.gradients,
                                               inputGradients: LoRASettings.needsConditioningGradients(optimizer.adapter))
            }
            start += n
        }
        var total = 0.0
        for (k, s) in segments.enumerated() { total += Double(s.weight) * sums[k] / Double(s.rows * per) }
        return (Float(total), Float(sums[0] / Double(b * per)))
    }

    /// The learning rate of step `s`: linear warm-up, then constant or a cosine decay.
    public func learningRate(at s: Int) -> Float {
        let peak = options.learningRate
        if s < options.warmupSteps { return peak * Float(s + 1) / Float(options.warmupSteps) }
        guard let f = options.finalLearningRateFraction else { return peak }
        let span = max(1, options.steps - options.warmupSteps - 1)
        let p = min(1, Float(s - options.warmupSteps) / Float(span))
        return peak * (f + (1 - f) * 0.5 * (1 + cos(Float.pi * p)))
    }

    private func trainStep() throws -> Float {
        let times = try assemble()
        let (loss, match) = try lossAndGradient(times: times, backward: true)
        optimizer.adam.lr = learningRate(at: step)
        optimizer.step()
        losses.append(loss)
        matchLosses.append(match)
        step += 1
        return loss
    }

    // MARK: Checks

    /// The loss of the batch of step `step` at the adapter's current values, and (when `gradient`)
    /// the adapter's gradient, without updating anything: for gradient checks and diagnostics.
    /// Runs the setup stages first if needed (anchors, replay).
    public func probe(step s: Int, gradient: Bool) throws -> (loss: Float, gradient: Tensor?) {
        try runSetupStages()
        let saved = step
        step = s
        defer { step = saved }
        let times = try assemble()
        optimizer.gradients.flat.zero()
        let (loss, _) = try lossAndGradient(times: times, backward: gradient)
        let g = gradient ? optimizer.gradients.flat.copy() : nil
        optimizer.gradients.flat.zero()
        return (loss, g)
    }

    /// Runs the stages before training (anchors, replay) if they have not run, stopping before the
    /// first training step.
    private func runSetupStages() throws {
        holdTraining = true
        defer { holdTraining = false }
        while stage != .training && stage != .done && stage != .dislocationAfter { _ = try next() }
    }

    /// The matching rows of step `s` as `lossAndGradient` trains them: each row's x_t, t, and
    /// target, for tests of what the implicit prompt is taught. Runs the setup stages first if needed.
    func matchingRows(step s: Int) throws -> [(xt: [Float], t: Float, target: [Float])] {
        Array(try trainingRows(step: s).prefix(batch))
    }

    /// Every row of step `s` (matching, explicit keep, unconditional keep, replay) as
    /// `lossAndGradient` trains them, like `matchingRows`.
    func trainingRows(step s: Int) throws -> [(xt: [Float], t: Float, target: [Float])] {
        try runSetupStages()
        let saved = step
        step = s
        defer { step = saved }
        let times = try assemble()
        _ = try lossAndGradient(times: times, backward: false)
        let per = bank.anchorSize
        return (0..<trainRows).map { i in
            (Array(UnsafeBufferPointer(start: trainX.data + i * per, count: per)), times[i],
             Array(UnsafeBufferPointer(start: targets.data + i * per, count: per)))
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
        if a.has(prefix + "replay_x0") {
            let t = try a.tensor(prefix + "replay_x0", count: options.replayPool * bank.anchorSize)
            replayX0 = t
        }
        if a.has(prefix + "policy_x0") {
            policyX0 = try a.tensor(prefix + "policy_x0", count: pairs.count * options.anchorsPerPair * bank.anchorSize)
            policyRound = try a.int(prefix + "policy_round")
        }
        if var v = verified {
            // The verdicts are not saved: they follow from the bank's images.
            try v.update(bank: bank, packing: model.packing)
            verified = v
        }
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
