import Diffusion
import EruDiff
import Foundation
import Models
import Tensors
import World
import XCTest

final class RefactoringTests: XCTestCase {
    /// A whole job at toy scale, small enough for a test.
    static func options(ablation: Bool = false) -> RefactoringOptions {
        var o = RefactoringOptions()
        o.evaluation = EvaluationTests.options()
        o.evaluation.sets = ["world:explicit", "world:test-concept"]
        o.evaluation.explicitCount = 3
        o.evaluation.samplesPerItem = 1
        o.dkdm = DistributionMatchingTests.options(steps: 5)
        o.dkdm.replayPerStep = 1
        o.dkdm.replayPool = 3
        o.dkdmSet = "world:test-paraphrase"
        o.evaluationAnchors = o.dkdm.anchors
        var onPolicy = o.dkdm
        onPolicy.steps = 4
        onPolicy.learningRate = 3e-3
        onPolicy.anchorSource = .policy
        onPolicy.anchorRefreshEvery = 2
        onPolicy.anchorsPerPair = 1
        o.dkdmOnPolicy = onPolicy
        o.norl = NegativeOnlyRLTests.options()
        o.norl.groupSize = 2
        o.norl.rounds = 2
        o.norl.stepsPerRound = 2
        o.norl.promptsPerRound = 3
        o.norl.klWeight = 0.05
        o.rlSet = "world:test-paraphrase"
        o.rlCaptions = 2
        o.grid.trainRowsPerFamily = 1
        o.grid.heldOutRowsPerFamily = 1
        o.grid.steps = 3
        o.ablation = ablation
        return o
    }

    /// A job stopped after any unit (a fresh model and job each time, as after a kill) and resumed
    /// from its checkpoint ends with the adapter and results of an uninterrupted job.
    func testResumeGivesTheSameAdapterAndResults() throws {
        let o = Self.options(ablation: true)
        let outFull = TinyModel.temporaryDirectory("refactor-full")
        let full = try Refactoring(model: try TinyModel.trained(), knowledge: TinyModel.knowledge, options: o, out: outFull)
        var units = 0, onPolicyUnits: [Int] = []
        while try full.next() != nil {
            units += 1
            if full.stage == .dkdmPolicy { onPolicyUnits.append(units) }
        }
        XCTAssertTrue(full.stages.contains(.dkdmPolicy))
        XCTAssertFalse(onPolicyUnits.isEmpty)
        let reference = try Data(contentsOf: outFull.appendingPathComponent("adapter.safetensors"))
        for name in ["results.json", "results.md", "grid-cultural.png", "grid-natural-science.png", "grid-spatio-temporal.png"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: outFull.appendingPathComponent(name).path), name)
        }
        let r = full.results
        XCTAssertNotNil(r.baseline); XCTAssertNotNil(r.dkdm); XCTAssertNotNil(r.afterDKDM); XCTAssertNotNil(r.norl)
        XCTAssertNotNil(r.final); XCTAssertNotNil(r.norlOnly); XCTAssertNotNil(r.afterNoRLOnly)
        XCTAssertEqual(r.dkdmPolicy?.steps, 4)
        XCTAssertTrue(r.markdown().contains("- DK-DM on the policy's samples: 4 steps"))
        XCTAssertTrue(r.markdown().contains("| DK-DM + NO-RL |"))
        var dkdmOnly = r  // a schedule with no NO-RL round names its last row for what ran
        dkdmOnly.norl?.rounds = 0
        XCTAssertTrue(dkdmOnly.markdown().contains("| DK-DM (0 NO-RL rounds) |"))
        XCTAssertFalse(dkdmOnly.markdown().contains("DK-DM + NO-RL"))
        print("tiny refactoring: \(units) units; stages \(full.stages.map(\.rawValue))")

        // Stops anywhere, including inside the on-policy DK-DM stage (its policy anchors are state).
        for stopAfter in [units / 5, onPolicyUnits[onPolicyUnits.count / 2], units / 2, units - 3] {
            let out = TinyModel.temporaryDirectory("refactor-\(stopAfter)")
            let a = try Refactoring(model: try TinyModel.trained(), knowledge: TinyModel.knowledge, options: o, out: out)
            for _ in 0..<stopAfter { _ = try a.next() }
            try a.checkpoint()
            let stageAtStop = a.stage
            let b = try Refactoring(model: try TinyModel.trained(), knowledge: TinyModel.knowledge, options: o, out: out)
            XCTAssertEqual(b.stage, stageAtStop)
            try b.run()
            let adapter = try Data(contentsOf: out.appendingPathComponent("adapter.safetensors"))
            XCTAssertEqual(adapter, reference, "stopped after \(stopAfter) units, at stage \(stageAtStop.rawValue)")
            XCTAssertEqual(b.results.final?.knowledge, r.final?.knowledge)
            XCTAssertEqual(b.results.final?.explicit, r.final?.explicit)
            XCTAssertEqual(b.results.norl?.losses, r.norl?.losses)
            XCTAssertEqual(b.results.dkdm?.loss, r.dkdm?.loss)
            XCTAssertEqual(b.results.dkdmPolicy?.loss, r.dkdmPolicy?.loss)
            XCTAssertEqual(b.results.afterNoRLOnly?.knowledge, r.afterNoRLOnly?.knowledge)
        }
        // Other options on the same folder are refused.
        var other = o
        other.norl.seed = 99
        XCTAssertThrowsError(try Refactoring(model: try TinyModel.trained(), knowledge: TinyModel.knowledge, options: other,
                                             out: outFull))
    }
}
