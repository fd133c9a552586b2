import Diffusion
import Foundation
import Tensors
import XCTest

/// Timestep schedules and single sampler steps against values worked out by hand.
final class ScheduleAndStepTests: XCTestCase {
    func testUnshiftedSchedule() {
        XCTAssertEqual(TimestepSchedule(steps: 4).sigmas, [1, 0.75, 0.5, 0.25, 0])
        XCTAssertEqual(TimestepSchedule(steps: 1).sigmas, [1, 0])
    }

    /// Static shift s = 3: σ' = 3σ / (1 + 2σ): 1 → 1, 0.75 → 0.9, 0.5 → 0.75, 0.25 → 0.5.
    func testStaticShift() {
        let s = TimestepSchedule(steps: 4, shift: .fixed(3)).sigmas
        for (a, b) in zip(s, [1, 0.9, 0.75, 0.5, 0] as [Float]) { XCTAssertEqual(a, b, accuracy: 1e-6) }
    }

    /// Dynamic shift: σ' = e^μ / (e^μ + 1/σ − 1); μ = 0.5 at 256 tokens and 1.15 at 4096.
    func testDynamicShift() {
        XCTAssertEqual(TimestepSchedule.mu(imageTokens: 256), 0.5, accuracy: 1e-6)
        XCTAssertEqual(TimestepSchedule.mu(imageTokens: 4096), 1.15, accuracy: 1e-6)
        let mu: Float = 0.5, e = Float(Foundation.exp(0.5))
        let s = TimestepSchedule(steps: 2, shift: .dynamic(mu: mu)).sigmas
        XCTAssertEqual(s[0], 1, accuracy: 1e-6)
        XCTAssertEqual(s[1], e / (e + 1), accuracy: 1e-6)  // σ = 0.5
        XCTAssertEqual(s[2], 0)
    }

    func testEulerStep() {
        var x: [Float] = [1, -2], v: [Float] = [0.5, 4]
        SamplerStep.euler(x: &x, velocity: &v, sigma: 0.75, sigmaNext: 0.5, count: 2)
        XCTAssertEqual(x, [0.875, -3])
    }

    /// Flow-GRPO's SDE step by hand: σ = 0.5, σ_next = 0.25, a = 0.7 → s = 0.7·√(0.5/0.5) = 0.7,
    /// dt = −0.25, mean = x·(1 + 0.49/1·(−0.25)) + v·(1 + 0.49·0.5/1)·(−0.25), + 0.7·0.5·ε.
    func testSDEStep() {
        var x: [Float] = [1, -2], v: [Float] = [0.5, 4], eps: [Float] = [1, -0.5]
        SamplerStep.sde(x: &x, velocity: &v, sigma: 0.5, sigmaNext: 0.25, sigmaGuard: 0.75, noiseLevel: 0.7,
                        noise: &eps, count: 2)
        let kx: Float = 1 - 0.49 * 0.25, kv: Float = (1 + 0.245) * -0.25, kn: Float = 0.35
        let e0: Float = kx + 0.5 * kv + kn
        let e1: Float = -2 * kx + 4 * kv - 0.5 * kn
        XCTAssertEqual(x[0], e0, accuracy: 1e-6)
        XCTAssertEqual(x[1], e1, accuracy: 1e-6)
        // Noise level 0 is exactly Euler.
        var y: [Float] = [1, -2], z: [Float] = [1, -2]
        SamplerStep.sde(x: &y, velocity: &v, sigma: 0.5, sigmaNext: 0.25, sigmaGuard: 0.75, noiseLevel: 0,
                        noise: &eps, count: 2)
        SamplerStep.euler(x: &z, velocity: &v, sigma: 0.5, sigmaNext: 0.25, count: 2)
        XCTAssertEqual(y, z)
    }

    /// At σ = 1 the √(σ/(1−σ)) is guarded with the schedule's second σ (Flow-GRPO): finite.
    func testSDEGuardAtOne() {
        XCTAssertEqual(SamplerStep.sdeStd(sigma: 1, sigmaGuard: 0.75, noiseLevel: 0.5), 0.5 * 2, accuracy: 1e-6)
        XCTAssertEqual(SamplerStep.sdeStd(sigma: 0.8, sigmaGuard: 0.75, noiseLevel: 1), 2, accuracy: 1e-6)
    }

    func testGuidance() {
        var c: [Float] = [1, 3], u: [Float] = [0.5, -1]
        SamplerStep.guide(cond: &c, uncond: &u, scale: 1, count: 2)
        XCTAssertEqual(c, [1, 3])
        SamplerStep.guide(cond: &c, uncond: &u, scale: 4, count: 2)
        XCTAssertEqual(c, [2.5, 15])
    }

    /// x_t = (1 − t)·x0 + t·ε, target ε − x0, and x0 recovered from the exact velocity.
    func testFlowConvention() {
        var x0: [Float] = [0.5, -1], eps: [Float] = [2, 0.25], xt: [Float] = [0, 0], v: [Float] = [0, 0], back: [Float] = [0, 0]
        FlowMatching.noisy(x0: &x0, noise: &eps, t: 0.25, into: &xt, count: 2)
        XCTAssertEqual(xt, [0.875, -0.6875])
        FlowMatching.velocity(x0: &x0, noise: &eps, into: &v, count: 2)
        XCTAssertEqual(v, [1.5, 1.25])
        FlowMatching.denoised(xt: &xt, velocity: &v, t: 0.25, into: &back, count: 2)
        XCTAssertEqual(back[0], 0.5, accuracy: 1e-6)
        XCTAssertEqual(back[1], -1, accuracy: 1e-6)
    }

    /// Logit-normal times lie in (0, 1) with median near 1/2.
    func testLogitNormal() {
        var rng = RNG(seed: 4)
        let ts = (0..<4000).map { _ in FlowMatching.logitNormalTime(&rng) }
        XCTAssertTrue(ts.allSatisfy { $0 > 0 && $0 < 1 })
        XCTAssertEqual(ts.sorted()[2000], 0.5, accuracy: 0.03)
    }
}
