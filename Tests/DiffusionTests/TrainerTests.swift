import Diffusion
import Models
import Tensors
import XCTest

/// The flow-matching training step learns: on a tiny overfit problem the loss falls. (Adapters train with
/// the adapter step of DK-DM and NO-RL, `AdapterOptimizerTests`.)
final class TrainerTests: XCTestCase {
    func overfit() throws -> (first: Float, last: Float) {
        let model = Tiny.model(seed: 3)
        var opts = FlowMatchingTrainer.Options()
        opts.learningRate = 3e-3
        opts.captionDropout = 0
        let trainer = try FlowMatchingTrainer(model: model, batch: 4, positions: Tiny.packing.positions(textTokens: Tiny.textTokens),
                                              options: opts, seed: 5)
        var rng = RNG(seed: 6)
        let images = Tensor.uniform([4, 8, 8, 3], lo: -1, hi: 1, rng: &rng)
        let x0 = Tiny.packing.pack(images)
        let text = Tiny.text(4, seed: 7), empty = Tiny.text(1, seed: 8)
        var losses: [Float] = []
        for _ in 0..<200 { losses.append(try trainer.step(x0: x0, text: text, unconditional: empty).loss) }
        let first = losses.prefix(20).reduce(0, +) / 20, last = losses.suffix(20).reduce(0, +) / 20
        return (first, last)
    }

    /// 20,000 training times drawn with this shift and spread, sorted.
    private static func trainingTimes(shift: Float = 1, std: Float = 1, seed: UInt64) -> [Float] {
        var o = FlowMatchingTrainer.Options()
        o.timeShift = shift
        o.timeStd = std
        var rng = RNG(seed: seed)
        return (0..<20_000).map { _ in FlowMatchingTrainer.trainingTime(&rng, options: o) }.sorted()
    }

    /// Training times: logit-normal(0, 1) has median 1/2; a shift s moves every draw to
    /// s·t / (1 + (s − 1)·t), so the median to s / (1 + s) and the share above 0.9 up.
    func testTrainingTimeShiftMovesDrawsTowardsNoise() {
        let plain = Self.trainingTimes(seed: 11), shifted = Self.trainingTimes(shift: 3, seed: 11)
        XCTAssertEqual(plain[10_000], 0.5, accuracy: 0.02)
        XCTAssertEqual(shifted[10_000], 0.75, accuracy: 0.02)
        XCTAssertTrue(shifted.allSatisfy { $0 > 0 && $0 < 1 })
        let above = { (d: [Float]) in Float(d.filter { $0 > 0.9 }.count) / Float(d.count) }
        XCTAssertLessThan(above(plain), 0.05)
        XCTAssertGreaterThan(above(shifted), 0.1)  // 13.6% in theory against 1.4%
    }

    /// A wider logit-normal keeps the median at 1/2 and puts more draws near both ends: below 0.1
    /// 8.5% at std 1.6 against 1.4% at std 1 (Φ(−2.197 / std)), and as many above 0.9.
    func testTrainingTimeSpreadWidensBothEnds() {
        let plain = Self.trainingTimes(seed: 12), wide = Self.trainingTimes(std: 1.6, seed: 12)
        XCTAssertEqual(wide[10_000], 0.5, accuracy: 0.02)
        let share = { (d: [Float], p: (Float) -> Bool) in Float(d.filter(p).count) / Float(d.count) }
        XCTAssertEqual(share(plain) { $0 < 0.1 }, 0.014, accuracy: 0.005)
        XCTAssertEqual(share(wide) { $0 < 0.1 }, 0.085, accuracy: 0.01)
        XCTAssertEqual(share(wide) { $0 > 0.9 }, 0.085, accuracy: 0.01)
    }

    func testBaseTrainingLowersTheLoss() throws {
        let (first, last) = try overfit()
        print("base: loss \(first) → \(last)")
        XCTAssertLessThan(last, 0.6 * first)
    }
}
