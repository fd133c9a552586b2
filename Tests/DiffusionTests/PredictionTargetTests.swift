import Diffusion
import Models
import Tensors
import XCTest

/// The clean-sample target (JiT): outputs become velocities (x_t − x̂0) / max(t, t_min), in the sampler
/// and in the training step, whose gradient is carried back through that conversion.
final class PredictionTargetTests: XCTestCase {
    /// A model whose every output is the constant `bias` (per token channel): `proj_out` weight zero.
    private func constantModel(_ bias: [Float]) -> FluxTransformer {
        let model = Tiny.model(seed: 4)
        model.weights["proj_out.weight"]!.zero()
        let b = model.weights["proj_out.bias"]!
        for i in 0..<b.count { b.data[i] = bias[i] }
        model.weights.markChanged()
        return model
    }

    /// The exact x0 gives the flow velocity ε − x0 back at any t above t_min; below, the divisor is t_min.
    func testSampleOutputBecomesTheFlowVelocity() {
        var rng = RNG(seed: 1)
        let x0 = Tensor.randn([64], rng: &rng), eps = Tensor.randn([64], rng: &rng)
        for t: Float in [0.9, 0.3, 0.05] {
            let xt = Tensor(zeros: [64]), out = x0.copy(), v = Tensor(zeros: [64])
            FlowMatching.noisy(x0: x0.data, noise: eps.data, t: t, into: xt.data, count: 64)
            FlowMatching.velocity(x0: x0.data, noise: eps.data, into: v.data, count: 64)
            FlowMatching.velocity(fromOutput: out.data, prediction: .sample, xt: xt.data, t: t, count: 64)
            for i in 0..<64 { XCTAssertEqual(out.data[i], v.data[i], accuracy: 2e-4 / t) }
        }
        let xt = Tensor(shape: [1], values: [0.2]), out = Tensor(shape: [1], values: [0.1])
        FlowMatching.velocity(fromOutput: out.data, prediction: .sample, xt: xt.data, t: 0.01, count: 1)
        XCTAssertEqual(out.data[0], (0.2 - 0.1) / FlowMatching.sampleTargetMinTime, accuracy: 1e-5)
        let same = Tensor(shape: [1], values: [0.1])
        FlowMatching.velocity(fromOutput: same.data, prediction: .velocity, xt: xt.data, t: 0.3, count: 1)
        XCTAssertEqual(same.data[0], 0.1)
        XCTAssertEqual(FlowMatching.velocityJacobian(prediction: .sample, t: 0.25), -4)
        XCTAssertEqual(FlowMatching.velocityJacobian(prediction: .velocity, t: 0.25), 1)
    }

    /// A model that always predicts the clean image c: the Euler sampler ends exactly on c (its last
    /// step lands on the prediction), guided or not. Read as a velocity the same output ends elsewhere.
    func testSamplerLandsOnThePredictedSample() throws {
        let c = (0..<12).map { Float($0) / 12 - 0.4 }
        let model = constantModel(c)
        for guidance: Float? in [nil, 3] {
            let s = try FlowSampler(model: model, packing: Tiny.packing, prompts: Tiny.text(2, seed: 1),
                                    unconditional: guidance == nil ? nil : Tiny.text(1, seed: 2), guidance: guidance,
                                    seeds: [1, 2], steps: 6, prediction: .sample)
            try s.run()
            for k in 0..<s.tokens.count { XCTAssertEqual(s.tokens.data[k], c[k % 12], accuracy: 1e-4) }
            let v = try FlowSampler(model: model, packing: Tiny.packing, prompts: Tiny.text(2, seed: 1),
                                    seeds: [1, 2], steps: 6, prediction: .velocity)
            try v.run()
            XCTAssertGreaterThan(zip(v.tokens.array, (0..<v.tokens.count).map { c[$0 % 12] })
                .map { abs($0 - $1) }.max()!, 0.1)
        }
    }

    /// The training step's loss is the velocity-space MSE of the converted output, and its gradient
    /// goes through the conversion: with a constant output b, the first AdamW step moves each bias
    /// channel against the sign of ∂L/∂b = mean over rows of −2/τ·(v̂ − v), computed here by hand from the
    /// same draws (time, noise, dropout, in the trainer's order).
    func testTrainingStepDifferentiatesThroughTheConversion() throws {
        let bias = (0..<12).map { Float($0 % 5) / 5 - 0.3 }
        let model = constantModel(bias)
        var opts = FlowMatchingTrainer.Options()
        opts.prediction = .sample
        opts.learningRate = 1e-3
        opts.captionDropout = 0
        let b = 3, per = Tiny.packing.tokens * 12
        let trainer = try FlowMatchingTrainer(model: model, batch: b, positions: Tiny.packing.positions(textTokens: Tiny.textTokens),
                                              options: opts, seed: 9)
        var rng = RNG(seed: 5)
        let x0 = Tensor.uniform([b, per], lo: -1, hi: 1, rng: &rng)

        var draws = RNG(seed: 9)
        var lossSum: Double = 0
        var grad = [Double](repeating: 0, count: 12)
        let noise = Tensor(zeros: [per])
        for i in 0..<b {
            let t = FlowMatchingTrainer.trainingTime(&draws, options: opts)
            draws.fillNormal(noise.data, count: per)
            _ = draws.uniform()
            let tau = FlowMatching.sampleTargetDivisor(t)
            for j in 0..<per {
                let x = x0.data[i * per + j], e = noise.data[j]
                let xt = (1 - t) * x + t * e
                let diff = Double((xt - bias[j % 12]) / tau - (e - x))
                lossSum += diff * diff
                grad[j % 12] += -2 / Double(tau) * diff
            }
        }
        let result = try trainer.step(x0: x0, text: Tiny.text(b, seed: 3), unconditional: Tiny.text(1, seed: 4))
        XCTAssertEqual(Double(result.loss), lossSum / Double(b * per), accuracy: 1e-3 * lossSum / Double(b * per))
        let after = model.weights["proj_out.bias"]!
        for ch in 0..<12 where abs(grad[ch]) > 1e-3 {
            let moved = after.data[ch] - bias[ch]
            XCTAssertEqual(Double(moved), grad[ch] > 0 ? -1e-3 : 1e-3, accuracy: 1e-4, "channel \(ch)")
        }
    }
}
