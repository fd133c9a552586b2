import Diffusion
import EruDiff
import Foundation
import Models
import Tensors
import World
import XCTest

final class NegativeOnlyRLTests: XCTestCase {
    /// Advantages and optimality weights against hand-computed values.
    func testAdvantageArithmetic() throws {
        // r = [1, 0, 0.5, 0.5]: mean 0.5, population std √0.125 = 0.353553…
        let a = try XCTUnwrap(NegativeAdvantage.advantages([1, 0, 0.5, 0.5], clip: 1))
        XCTAssertEqual(a[0], 0)                            // +1.41421 clipped to +1, then cut to 0
        XCTAssertEqual(a[1], -1)                           // −1.41421 clipped to −1
        XCTAssertEqual(a[2], 0); XCTAssertEqual(a[3], 0)
        let wide = try XCTUnwrap(NegativeAdvantage.advantages([1, 0, 0.5, 0.5], clip: 5))
        XCTAssertEqual(wide[1], -0.5 / (0.125.squareRoot() + 1e-4), accuracy: 1e-12)  // −1.41381…
        XCTAssertEqual(wide[0], 0)
        // r = [0.2, 0.4, 0.9]: mean 0.5, std √(0.26/3) = 0.294392
        let b = try XCTUnwrap(NegativeAdvantage.advantages([0.2, 0.4, 0.9], clip: 2))
        XCTAssertEqual(b[0], -0.3 / (0.294392028 + 1e-4), accuracy: 1e-6)  // −1.01869
        XCTAssertEqual(b[1], -0.1 / (0.294392028 + 1e-4), accuracy: 1e-6)  // −0.339566
        XCTAssertEqual(b[2], 0)
        XCTAssertEqual(NegativeAdvantage.optimality(0, clip: 2), 0.5)
        XCTAssertEqual(NegativeAdvantage.optimality(-1, clip: 2), 0.25)
        XCTAssertEqual(NegativeAdvantage.optimality(-2, clip: 2), 0)
        XCTAssertEqual(NegativeAdvantage.optimality(-3, clip: 2), 0)  // clamped
        XCTAssertNil(NegativeAdvantage.advantages([0.7, 0.7, 0.7], clip: 2))
        XCTAssertNil(NegativeAdvantage.advantages([1], clip: 2))
    }

    /// The loss kernel against its definition on hand values, and its gradient against finite
    /// differences in v_θ.
    func testLossKernel() {
        let vt: [Float] = [0.5, -1, 2, 0.25], vo: [Float] = [0, -0.5, 1, 1], vr: [Float] = [1, 1, 1, 1]
        let u: [Float] = [1, 0, 1, -1], rho: [Float] = [0.25, 0.5]
        let beta: Float = 0.5, kl: Float = 0.1
        var g = [Float](repeating: 0, count: 4)
        let loss = NegativeOnlyRL.lossAndGradient(vTheta: vt, vOld: vo, vRef: vr, target: u, rho: rho, perSample: 2,
                                                  beta: beta, klWeight: kl, gradient: &g)
        var expect = 0.0
        for i in 0..<4 {
            let r = Double(rho[i / 2]), b = Double(beta)
            let vp = (1 - b) * Double(vo[i]) + b * Double(vt[i]), vm = (1 + b) * Double(vo[i]) - b * Double(vt[i])
            expect += r * pow(vp - Double(u[i]), 2) + (1 - r) * pow(vm - Double(u[i]), 2) + Double(kl) * pow(Double(vt[i] - vr[i]), 2)
        }
        XCTAssertEqual(Double(loss), expect / 4, accuracy: 1e-6)
        for i in 0..<4 {
            var p = vt, m = vt, scratch = g
            p[i] += 1e-3; m[i] -= 1e-3
            let lp = NegativeOnlyRL.lossAndGradient(vTheta: p, vOld: vo, vRef: vr, target: u, rho: rho, perSample: 2,
                                                    beta: beta, klWeight: kl, gradient: &scratch)
            let lm = NegativeOnlyRL.lossAndGradient(vTheta: m, vOld: vo, vRef: vr, target: u, rho: rho, perSample: 2,
                                                    beta: beta, klWeight: kl, gradient: &scratch)
            XCTAssertEqual((lp - lm) / 2e-3, g[i], accuracy: 2e-3)
        }
    }

    static func options() -> NegativeOnlyRL.Options {
        var o = NegativeOnlyRL.Options()
        o.lora = LoRASettings(rank: 4, alpha: 4, seed: 3)
        o.klWeight = 0
        o.beta = 1
        o.advantageClip = 2
        o.batchSize = 4
        o.stepsPerRound = 1
        o.sampling = SamplingSettings(steps: 4, guidance: 3, sdeNoise: 0.7)
        return o
    }

    /// Renders of `caption` (a group of right images) as [G, 32, 32, 3].
    static func renders(_ caption: String, count: Int, seed: UInt64) -> Tensor {
        let a = Caption.parse(caption)!
        let t = Tensor(zeros: [count, 32, 32, 3])
        var rng = RNG(seed: seed)
        for i in 0..<count { Renderer.render(a, rng: &rng, into: t.data + i * 32 * 32 * 3) }
        return t
    }

    /// E over fixed (t, ε) of ‖v(x_t, t, c) − (ε − x0)‖² along the path of sample `i` of `images`; with
    /// `guidance` w, of the guided velocity v(∅) + w·(v(c) − v(∅)).
    static func pathError(_ m: FlowModel, prompt: String, images: Tensor, sample i: Int, guidance: Float = 1) throws -> Double {
        let pk = m.packing, per = pk.tokens * pk.tokenChannels
        let x0 = pk.pack(images)
        let n = 16
        let xt = Tensor(zeros: [n, pk.tokens, pk.tokenChannels]), u = Tensor(zeros: [n * per]), eps = Tensor(zeros: [per])
        var rng = RNG(seed: 31)
        var times: [Float] = []
        for j in 0..<n {
            let t = (Float(j) + 0.5) / Float(n)
            rng.fillNormal(eps.data, count: per)
            FlowMatching.noisy(x0: x0.data + i * per, noise: eps.data, t: t, into: xt.data + j * per, count: per)
            FlowMatching.velocity(x0: x0.data + i * per, noise: eps.data, into: u.data + j * per, count: per)
            times.append(t)
        }
        let text = try m.encode([String](repeating: prompt, count: n))
        let ws = try m.inferenceWorkspace(rows: n)
        let v = try m.velocity(FluxInput(image: xt, text: text.states, pooled: text.pooled, timesteps: times),
                               workspace: ws, useAdapter: true).copy()
        if guidance != 1 {
            let empty = try m.encode([String](repeating: "", count: n))
            let vu = try m.velocity(FluxInput(image: xt, text: empty.states, pooled: empty.pooled, timesteps: times),
                                    workspace: ws, useAdapter: true)
            for k in 0..<(n * per) { v.data[k] = vu[k] + guidance * (v.data[k] - vu[k]) }
        }
        var s = 0.0
        for k in 0..<(n * per) { s += Double((v[k] - u[k]) * (v[k] - u[k])) }
        return s / Double(n * per)
    }

    /// One update on a group of three right images and one wrong one (what a verifier would reward 0):
    /// how much each sample's path error against u = ε − x0 grew, for the velocity that was trained —
    /// the conditional one, or with `guidedPolicy` the guided one at guidance 3.
    static func pathErrorChange(guided: Bool, prediction: PredictionTarget = .velocity) throws -> [Double] {
        let m = try TinyModel.trained(prediction: prediction)
        let prompt = "a red circle on a white background"
        let images = Self.renders(prompt, count: 4, seed: 8)
        let wrong = Self.renders("a large blue square on a yellow background", count: 1, seed: 9)
        (images.data + 3 * 32 * 32 * 3).update(from: wrong.data, count: 32 * 32 * 3)
        _ = try m.createAdapter(rank: 4, alpha: 4, seed: 3)
        let w: Float = guided ? 3 : 1
        let before = try (0..<4).map { try Self.pathError(m, prompt: prompt, images: images, sample: $0, guidance: w) }
        var o = Self.options()
        o.guidedPolicy = guided
        o.sampling.guidance = 3
        o.learningRate = 3e-3
        o.stepsPerRound = 3
        let r = try NegativeOnlyRL(model: m, groups: [RLGroup(prompt: prompt, images: images, rewards: [1, 1, 1, 0])],
                                   options: o).run()
        XCTAssertEqual(r.negatives, 1)
        XCTAssertEqual(r.losses.count, 3)
        let after = try (0..<4).map { try Self.pathError(m, prompt: prompt, images: images, sample: $0, guidance: w) }
        print("NO-RL (guided: \(guided)) path error before \(before), after \(after)")
        return (0..<4).map { after[$0] - before[$0] }
    }

    /// The update moves the policy's velocity along the negative sample's probability path away from
    /// the sample (its path error grows), while the paths of the others (ρ = 0.5: held at v_old) move
    /// only through what they share with the negative, much less.
    func testNegativeSampleIsPushedAway() throws {
        let moved = try Self.pathErrorChange(guided: false)
        XCTAssertGreaterThan(moved[3], 0, "the negative sample's path error must grow")
        for j in 0..<3 { XCTAssertLessThan(abs(moved[j]), moved[3] / 2) }
    }

    /// The same for a network that predicts the clean image (the update is written in velocities).
    func testNegativeSampleIsPushedAwayForSamplePrediction() throws {
        let moved = try Self.pathErrorChange(guided: false, prediction: .sample)
        XCTAssertGreaterThan(moved[3], 0, "the negative sample's path error must grow")
        for j in 0..<3 { XCTAssertLessThan(abs(moved[j]), moved[3] / 2) }
    }

    /// The same with `guidedPolicy`, for the guided velocity, which sampled the groups.
    func testGuidedPolicyPushesTheGuidedVelocityAway() throws {
        let moved = try Self.pathErrorChange(guided: true)
        XCTAssertGreaterThan(moved[3], 0, "the negative sample's guided path error must grow")
        for j in 0..<3 { XCTAssertLessThan(abs(moved[j]), moved[3] / 2) }
    }

    /// At guidance 1 the guided velocity is the conditional one: `guidedPolicy` changes nothing, bit for
    /// bit; at guidance 3 it trains something else.
    func testGuidedPolicyWithoutGuidanceIsThePlainUpdate() throws {
        func run(guided: Bool, guidance: Float) throws -> [Float] {
            let m = try TinyModel.trained()
            let a = try m.createAdapter(rank: 4, alpha: 4, seed: 3)
            var o = Self.options()
            o.guidedPolicy = guided
            o.sampling.guidance = guidance
            o.klWeight = 0.3
            o.stepsPerRound = 2
            let images = Self.renders("a red circle", count: 4, seed: 3)
            _ = try NegativeOnlyRL(model: m, groups: [RLGroup(prompt: "a red circle", images: images, rewards: [1, 0.5, 1, 0])],
                                   options: o).run()
            return a.flat.array
        }
        XCTAssertEqual(try run(guided: true, guidance: 1), try run(guided: false, guidance: 1))
        XCTAssertNotEqual(try run(guided: true, guidance: 3), try run(guided: false, guidance: 3))
    }

    /// A step cut into passes of 3 rows (no-grad passes of 2) updates the adapter as one pass does.
    func testPassesAddUp() throws {
        func run(rowsPerPass: Int, inferenceRows: Int) throws -> [Float] {
            let m = try TinyModel.trained()
            m.maxInferenceRows = inferenceRows
            _ = try m.createAdapter(rank: 4, alpha: 4, seed: 3)
            var o = Self.options()
            o.rowsPerPass = rowsPerPass
            o.klWeight = 0.2
            o.stepsPerRound = 2
            o.batchSize = 7
            o.maxGradNorm = nil
            let images = Self.renders("a red circle", count: 8, seed: 3)
            let rewards: [Double] = [1, 0, 0.5, 1, 0, 0.25, 1, 1]
            _ = try NegativeOnlyRL(model: m, groups: [RLGroup(prompt: "a red circle", images: images, rewards: rewards)],
                                   options: o).run()
            return m.adapter!.flat.array
        }
        let whole = try run(rowsPerPass: 16, inferenceRows: 32), split = try run(rowsPerPass: 3, inferenceRows: 2)
        var diff: Float = 0, scale: Float = 0
        for i in 0..<whole.count { diff = max(diff, abs(whole[i] - split[i])); scale = max(scale, abs(whole[i])) }
        XCTAssertLessThan(diff, 1e-4 * scale)
    }

    /// `klReference: .start` holds the policy to the adapter the run began with: at the start the
    /// KL term is zero, so the update is (up to rounding) the update without it, while the base
    /// reference (adapter off) pulls a trained adapter somewhere else.
    func testKLReferenceStartHoldsTheStartingAdapter() throws {
        func run(klWeight: Float, reference: NegativeOnlyRLOptions.KLReference) throws -> [Float] {
            let m = try TinyModel.trained()
            let a = try m.createAdapter(rank: 4, alpha: 4, seed: 3)
            var rng = RNG(seed: 4)
            rng.fillNormal(a.flat.data, count: a.flat.count, std: 0.1)  // an adapter that has learnt something
            var o = Self.options()
            o.klWeight = klWeight
            o.klReference = reference
            o.stepsPerRound = 1
            o.learningRate = 1e-3
            o.maxGradNorm = nil
            let images = Self.renders("a red circle", count: 4, seed: 3)
            _ = try NegativeOnlyRL(model: m, groups: [RLGroup(prompt: "a red circle", images: images, rewards: [1, 1, 1, 0])],
                                   options: o).run()
            return a.flat.array
        }
        let none = try run(klWeight: 0, reference: .base)
        let start = try run(klWeight: 1, reference: .start), base = try run(klWeight: 1, reference: .base)
        func l1(_ x: [Float], _ y: [Float]) -> Float { zip(x, y).reduce(0) { $0 + abs($1.0 - $1.1) } }
        print("KL reference: |start − none|₁ \(l1(start, none)), |base − none|₁ \(l1(base, none))")
        XCTAssertGreaterThan(l1(base, none), 0)
        XCTAssertLessThan(l1(start, none), 0.05 * l1(base, none))
    }

    /// A group whose rewards are all equal carries no signal: nothing changes, bit for bit.
    func testEqualRewardsChangeNothing() throws {
        let m = try TinyModel.model()
        let a = try m.createAdapter(rank: 4, alpha: 4, seed: 3)
        var rng = RNG(seed: 4)
        rng.fillNormal(a.flat.data, count: a.flat.count, std: 0.1)
        let snapshot = a.flat.array
        let images = Self.renders("a blue star", count: 4, seed: 2)
        var o = Self.options()
        o.stepsPerRound = 4
        o.learningRate = 1e-2
        o.weightDecay = 0.1
        let r = try NegativeOnlyRL(model: m, groups: [RLGroup(prompt: "a blue star", images: images, rewards: [0.5, 0.5, 0.5, 0.5])],
                                   options: o).run()
        XCTAssertEqual(a.flat.array, snapshot)
        XCTAssertEqual(r.negatives, 0)
        XCTAssertEqual(r.perRound.first?.skippedGroups, 1)
        XCTAssertNil(r.loss)
    }

    /// World rewards: groups are sampled (SDE), verified and trained on; results are reported.
    func testWorldRewardRoundsRun() throws {
        let m = try TinyModel.model()
        var o = Self.options()
        o.groupSize = 3
        o.rounds = 2
        o.stepsPerRound = 2
        o.klWeight = 0.1
        o.oldPolicy = .ema(decay: 0.5)
        let item = TinyModel.knowledge.items(in: .train)[0]
        let prompts = [try RLPrompt(item, .implicit), try RLPrompt(item, .explicit), try RLPrompt(caption: "a small green heart")]
        let r = try NegativeOnlyRL(model: m, prompts: prompts, options: o).run()
        XCTAssertEqual(r.rounds, 2)
        XCTAssertEqual(r.perRound.map(\.groups), [3, 3])
        XCTAssertTrue((0...1).contains(r.rewardMean))
        XCTAssertThrowsError(try RLPrompt(item, .superficial))
        XCTAssertEqual(try RLPrompt.resolve(item.implicit, knowledge: TinyModel.knowledge).expect, item.expect)
        XCTAssertEqual(try RLPrompt.resolve("a small green heart", knowledge: TinyModel.knowledge).expect,
                       Attributes(shape: .heart, color: .green, size: .small))
        XCTAssertThrowsError(try RLPrompt.resolve("a picture of happiness", knowledge: TinyModel.knowledge))
        XCTAssertThrowsError(try RLPrompt(caption: "the flag of Japan"))
    }

    /// Interrupted after any unit and resumed from a saved state, NO-RL ends with the same adapter.
    func testResumeGivesTheSameAdapter() throws {
        var o = Self.options()
        o.groupSize = 3
        o.rounds = 2
        o.stepsPerRound = 2
        o.klWeight = 0.05
        let prompts = [try RLPrompt(caption: "a red circle on a white background"), try RLPrompt(caption: "a blue square")]
        let m1 = try TinyModel.model()
        _ = try NegativeOnlyRL(model: m1, prompts: prompts, options: o).run()
        let reference = try XCTUnwrap(m1.adapter).flat.array
        for stopAfter in [2, 7, 9] {
            let m2 = try TinyModel.model()
            let a = try NegativeOnlyRL(model: m2, prompts: prompts, options: o)
            for _ in 0..<stopAfter { _ = try a.next() }
            let archive = StateArchive()
            try a.save(into: archive, prefix: "rl.")
            let url = TinyModel.temporaryDirectory("rl-resume").appendingPathComponent("s.safetensors")
            try archive.write(to: url)
            let m3 = try TinyModel.model()
            let b = try NegativeOnlyRL(model: m3, prompts: prompts, options: o)
            try b.restore(from: StateArchive(contentsOf: url), prefix: "rl.")
            _ = try b.run()
            XCTAssertEqual(try XCTUnwrap(m3.adapter).flat.array, reference, "stopped after \(stopAfter) units")
        }
    }
}
