import Diffusion
import EruDiff
import Foundation
import Models
import Tensors
import World
import XCTest

final class DistributionMatchingTests: XCTestCase {
    /// Fast anchors for tests: 4 guided Euler steps.
    static func options(steps: Int = 10) -> DistributionMatching.Options {
        var o = DistributionMatching.Options()
        o.steps = steps
        o.batchSize = 2
        o.anchorsPerPair = 2
        o.anchors = AnchorBank.Settings(sampling: SamplingSettings(steps: 4, guidance: 3), seed: 5)
        o.lora = LoRASettings(rank: 2, alpha: 4, seed: 3)
        o.dislocation = nil
        return o
    }

    /// The full DK-DM loss (matching + keep on explicit and unconditional + replay) against central
    /// finite differences in a few LoRA parameters of A and of B.
    func testGradientMatchesFiniteDifferences() throws {
        try checkGradient(targets: nil)
    }

    /// The same with adapters on every linear layer, the adaLN modulations and the timestep and
    /// pooled-text embedders included (gradients must reach the conditioning path).
    func testGradientMatchesFiniteDifferencesAllTargets() throws {
        try checkGradient(targets: LoRASettings.allTargets(TinyModel.config))
    }

    /// The same when only the first pair of each batch carries keep rows (`keepPerStep` 1 of 2).
    func testGradientMatchesFiniteDifferencesWithFewerKeepRows() throws {
        try checkGradient(targets: nil, keepPerStep: 1)
    }

    /// The same for a network that predicts the clean image: the loss is in velocities derived from
    /// its output, and the gradient goes back through that conversion.
    /// Its loss is about 100× larger (the 1/t² of the conversion), so float32 differences are noisier:
    /// 5% where a wrong conversion's gradient is off by its whole size.
    func testGradientMatchesFiniteDifferencesForSamplePrediction() throws {
        try checkGradient(targets: nil, prediction: .sample, tolerance: 5e-2)
    }

    /// No keep rows at all (`keepPerStep` 0) is the same loss as no keep weight: the matching and
    /// replay terms alone; a keep row changes it.
    func testZeroKeepRowsLeavesMatchingAndReplayOnly() throws {
        func loss(weight: Float, keepRows: Int?) throws -> Float {
            let m = try TinyModel.model()
            var o = Self.options()
            o.preserveWeight = weight
            o.keepPerStep = keepRows
            o.replayPerStep = 1
            o.replayPool = 3
            o.replaySource = .rendered
            o.replayWeight = 0.4
            let run = try DistributionMatching(model: m, pairs: TinyModel.trainPairs(3), options: o)
            _ = try run.probe(step: 0, gradient: false)
            var rng = RNG(seed: 78)
            let adapter = try XCTUnwrap(m.adapter)
            rng.fillNormal(adapter.flat.data, count: adapter.flat.count, std: 0.3)  // the policy ≠ the reference
            return try run.probe(step: 2, gradient: false).loss
        }
        let none = try loss(weight: 0, keepRows: nil)
        XCTAssertEqual(try loss(weight: 0.7, keepRows: 0), none, accuracy: 1e-6 * abs(none))
        XCTAssertGreaterThan(try loss(weight: 0.7, keepRows: 1), none * (1 + 1e-4))
    }

    func checkGradient(targets: [String]?, keepPerStep: Int? = nil, prediction: PredictionTarget = .velocity,
                       tolerance: Double = 3e-2) throws {
        let m = try TinyModel.model(prediction: prediction)
        var o = Self.options()
        o.lora.targets = targets
        o.keepPerStep = keepPerStep
        o.preserveWeight = 0.7
        o.replayPerStep = 1
        o.replayPool = 3
        o.replaySource = .rendered
        o.replayWeight = 0.4
        let run = try DistributionMatching(model: m, pairs: TinyModel.trainPairs(3), options: o)
        _ = try run.probe(step: 0, gradient: false)  // creates the adapter
        let adapter = try XCTUnwrap(m.adapter)
        var rng = RNG(seed: 77)
        rng.fillNormal(adapter.flat.data, count: adapter.flat.count, std: 0.3)  // B ≠ 0: A gets gradients too
        let (_, g) = try run.probe(step: 4, gradient: true)
        let grad = try XCTUnwrap(g)
        // The same batch cut into passes of 3 rows (reference passes of 4) gives the same loss and gradient.
        let mSplit = try TinyModel.model(prediction: prediction)
        mSplit.maxInferenceRows = 4
        var oSplit = o
        oSplit.rowsPerPass = 3
        let split = try DistributionMatching(model: mSplit, pairs: TinyModel.trainPairs(3), options: oSplit)
        _ = try split.probe(step: 0, gradient: false)
        try XCTUnwrap(mSplit.adapter).flat.copy(from: adapter.flat)
        let (lossSplit, gSplit) = try split.probe(step: 4, gradient: true)
        XCTAssertEqual(lossSplit, try run.probe(step: 4, gradient: false).loss, accuracy: 1e-6 * abs(lossSplit))
        var diff: Float = 0, norm: Float = 0
        for i in 0..<grad.count { diff = max(diff, abs(grad[i] - gSplit![i])); norm = max(norm, abs(grad[i])) }
        XCTAssertLessThan(diff, 1e-4 * norm)
        var chosen = [adapter.tensors.first { $0.name.hasSuffix("lora_A.weight") }!,
                      adapter.tensors.first { $0.name.hasSuffix("lora_B.weight") }!]
        if targets != nil {
            for prefix in ["time_text_embed.text_embedder.linear_1", "transformer_blocks.0.norm1.linear",
                           "single_transformer_blocks.0.norm.linear", "norm_out.linear", "context_embedder"] {
                chosen += adapter.tensors.filter { $0.name.hasPrefix(prefix + ".lora_") }
            }
        }
        var indices: [Int] = []
        for (_, t) in chosen {
            let off = t.data - adapter.flat.data
            for k in [0, 5, t.count - 1] { indices.append(off + k) }
        }
        // The largest gradient entries too (most signal).
        let top = (0..<grad.count).sorted { abs(grad[$0]) > abs(grad[$1]) }.prefix(4)
        indices += top
        let h: Float = 1e-2
        var worst = 0.0
        for i in indices {
            let x = adapter.flat[i]
            adapter.flat[i] = x + h
            let lp = try run.probe(step: 4, gradient: false).loss
            adapter.flat[i] = x - h
            let lm = try run.probe(step: 4, gradient: false).loss
            adapter.flat[i] = x
            let numeric = Double(lp - lm) / Double(2 * h)
            let analytic = Double(grad[i])
            let scale = max(abs(numeric), abs(analytic), 1e-3 * Double(abs(grad[top.first!])))
            let err = abs(numeric - analytic) / scale
            worst = max(worst, err)
            XCTAssertLessThan(err, tolerance, "parameter \(i): numeric \(numeric), analytic \(analytic)")
        }
        print("DK-DM gradient check (\(targets == nil ? "default" : "all") targets): \(indices.count) parameters, worst relative error \(worst)")
    }

    /// D(c, c) = 0: the same prompt on both sides gives the same velocity.
    func testDislocationIsZeroForIdenticalPrompts() throws {
        let m = try TinyModel.trained()
        let pairs = [KnowledgePair(id: "same", implicit: "a red circle on a white background",
                                   explicit: "a red circle on a white background"),
                     KnowledgePair(id: "japan", implicit: "the flag of Japan", explicit: "a red circle on a white background")]
        let bank = AnchorBank(settings: AnchorBank.Settings(sampling: SamplingSettings(steps: 3), seed: 1), model: m)
        let d = try DislocationMeasurement(model: m, pairs: pairs, bank: bank,
                                           settings: .init(samplesPerPair: 6, anchors: 2, seed: 4)).run()
        print("dislocation: same prompt \(d.perItem["same"]!), the flag of Japan \(d.perItem["japan"]!)")
        XCTAssertLessThan(d.perItem["same"]!, 1e-10)
        XCTAssertGreaterThan(d.perItem["japan"]!, 1e-3)
        XCTAssertEqual(d.mean, (d.perItem["same"]! + d.perItem["japan"]!) / 2, accuracy: 1e-12)
        // Fixed seeds: measuring again gives the same numbers.
        let again = try DislocationMeasurement(model: m, pairs: pairs, bank: bank,
                                               settings: .init(samplesPerPair: 6, anchors: 2, seed: 4)).run()
        XCTAssertEqual(again, d)
    }

    /// Training lowers the dislocation of the trained pairs, and the run reports it before and after.
    func testTrainingLowersDislocation() throws {
        let m = try TinyModel.trained()
        var o = Self.options(steps: 100)
        o.batchSize = 4
        o.learningRate = 1e-2
        o.lora = LoRASettings(rank: 4, alpha: 4, seed: 3, targets: LoRASettings.allTargets(TinyModel.config))
        o.dislocation = DislocationMeasurement.Settings(samplesPerPair: 8, anchors: 2, seed: 9)
        o.replayPerStep = 2
        o.replayPool = 8
        let r = try DistributionMatching(model: m, pairs: TinyModel.trainPairs(4), options: o).run()
        let before = try XCTUnwrap(r.dislocationBefore), after = try XCTUnwrap(r.dislocationAfter)
        print("tiny DK-DM: dislocation \(before.mean) → \(after.mean), match loss \(r.matchLoss.first!) → \(r.matchLoss.last!)")
        XCTAssertEqual(r.steps, 100)
        XCTAssertEqual(r.loss.count, 100)
        XCTAssertLessThan(after.mean, before.mean / 3)
        XCTAssertEqual(Set(before.perItem.keys), Set(TinyModel.trainPairs(4).map(\.id)))
        XCTAssertNotNil(before.bySplit["train"])
    }

    /// The policy anchor source runs (anchors from the policy under c_i, refreshed) and trains.
    func testPolicyAnchorsRun() throws {
        let m = try TinyModel.model()
        var o = Self.options(steps: 6)
        o.anchorSource = .policy
        o.anchorRefreshEvery = 3
        let r = try DistributionMatching(model: m, pairs: TinyModel.trainPairs(2), options: o).run()
        XCTAssertEqual(r.loss.count, 6)
        XCTAssertTrue(r.loss.allSatisfy { $0.isFinite })
    }

    /// Stopped after any unit, saved, and resumed in a fresh process-like setup (new model object,
    /// new run), DK-DM ends with the bit-identical adapter of an uninterrupted run.
    func testResumeGivesTheSameAdapter() throws {
        var o = Self.options(steps: 8)
        o.replayPerStep = 1
        o.replayPool = 4
        o.dislocation = DislocationMeasurement.Settings(samplesPerPair: 2, anchors: 1, seed: 2)
        let pairs = TinyModel.trainPairs(3)
        let m1 = try TinyModel.model()
        let full = try DistributionMatching(model: m1, pairs: pairs, options: o).run()
        let reference = try XCTUnwrap(m1.adapter).flat.array
        for stopAfter in [3, 9, 14] {
            let m2 = try TinyModel.model()
            let a = try DistributionMatching(model: m2, pairs: pairs, options: o)
            for _ in 0..<stopAfter { _ = try a.next() }
            let url = TinyModel.temporaryDirectory("dkdm-resume").appendingPathComponent("state.safetensors")
            let archive = StateArchive()
            try a.save(into: archive, prefix: "dkdm.")
            try archive.write(to: url)
            let m3 = try TinyModel.model()
            let b = try DistributionMatching(model: m3, pairs: pairs, options: o)
            try b.restore(from: StateArchive(contentsOf: url), prefix: "dkdm.")
            let r = try b.run()
            XCTAssertEqual(try XCTUnwrap(m3.adapter).flat.array, reference, "stopped after \(stopAfter) units")
            XCTAssertEqual(r.loss, full.loss)
            XCTAssertEqual(r.dislocationAfter, full.dislocationAfter)
        }
    }
}
