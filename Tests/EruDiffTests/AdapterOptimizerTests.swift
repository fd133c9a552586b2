@testable import EruDiff
import Diffusion
import Models
import Tensors
import XCTest

/// The adapter step of DK-DM and NO-RL on a plain flow-matching loss.
final class AdapterOptimizerTests: XCTestCase {
    /// On a tiny overfit problem the loss falls, only the adapter moves, and passes of fewer rows than
    /// the batch give the batch's gradient.
    func testAdapterStepLowersAFlowMatchingLossAndLeavesTheBase() throws {
        let model = try TinyModel.model(seed: 3)
        let base = model.transformer.weights.flat!.copy()
        let optimizer = try AdapterOptimizer(model: model, lora: LoRASettings(rank: 4, alpha: 4, seed: 2), fresh: true, rows: 4,
                                             rowsPerPass: 3, schedule: LearningRateSchedule(peak: 1e-2), weightDecay: 0, maxGradNorm: 1)
        let pk = model.packing, per = pk.tokens * pk.tokenChannels, times: [Float] = [0.2, 0.4, 0.6, 0.8]
        var rng = RNG(seed: 6)
        let x0 = Tensor.uniform([4, pk.tokens, pk.tokenChannels], lo: -1, hi: 1, rng: &rng)
        let xt = Tensor(zeros: x0.shape), target = Tensor(zeros: x0.shape), noise = Tensor(zeros: [per])
        let encoded = try model.encode(["a red circle", "a blue square", "a green star", "a yellow heart"])
        let text = ConditioningRows(capacity: 4, model: model)
        for i in 0..<4 {
            rng.fillNormal(noise.data, count: per)
            FlowMatching.noisy(x0: x0.data + i * per, noise: noise.data, t: times[i], into: xt.data + i * per, count: per)
            FlowMatching.velocity(x0: x0.data + i * per, noise: noise.data, into: target.data + i * per, count: per)
            text.set(i, from: encoded, index: i)
        }
        func loss(rowsPerPass: Int? = nil) throws -> Float {
            var mse = WeightedMSE(width: per, groups: [.init(rows: 4)])
            try optimizer.passes(rows: 4, input: { text.input(xt, from: $0, rows: $1, times: times) }) { out, first, gradient in
                mse.add([.init(out.data, target.data + first * per)], first: first, rows: out.shape[0], gradient: gradient)
            }
            return mse.loss
        }
        var losses: [Float] = []
        for s in 0..<200 {
            losses.append(try loss())
            if s == 100 {
                // The gradient of passes of 3 + 1 rows against one of 4: the same up to rounding.
                let passes = optimizer.gradients.flat.copy()
                optimizer.gradients.flat.zero()
                let whole = try AdapterOptimizer(model: model, lora: LoRASettings(), fresh: false, rows: 4, rowsPerPass: 4,
                                                 schedule: LearningRateSchedule(peak: 1e-2), weightDecay: 0, maxGradNorm: 1)
                var mse = WeightedMSE(width: per, groups: [.init(rows: 4)])
                try whole.passes(rows: 4, input: { text.input(xt, from: $0, rows: $1, times: times) }) { out, first, gradient in
                    mse.add([.init(out.data, target.data + first * per)], first: first, rows: out.shape[0], gradient: gradient)
                }
                let scale = passes.array.map { abs($0) }.max()!
                XCTAssertGreaterThan(scale, 0)
                for (a, b) in zip(passes.array, whole.gradients.flat.array) { XCTAssertEqual(a, b, accuracy: 1e-4 * scale) }
                optimizer.gradients.flat.copy(from: passes)
            }
            optimizer.step(at: s)
        }
        let first = losses.prefix(20).reduce(0, +) / 20, last = losses.suffix(20).reduce(0, +) / 20
        XCTAssertLessThan(last, 0.95 * first, "loss \(first) → \(last)")
        XCTAssertEqual(model.transformer.weights.flat!.array, base.array)
    }
}
