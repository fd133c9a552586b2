@testable import EruDiff
import Foundation
import Models
import Tensors
import XCTest

/// What DK-DM's matching rows are trained towards: the reference's velocity under the explicit prompt
/// (DESIGN §4.2) or, with `matchTarget` `.anchor`, the anchor's own flow velocity ε − x0.
final class MatchTargetTests: XCTestCase {
    private func rows(_ target: DistributionMatchingOptions.MatchTarget?, step: Int) throws
        -> (rows: [(xt: [Float], t: Float, target: [Float])], run: DistributionMatching) {
        let m = try TinyModel.model()
        var o = DistributionMatchingTests.options()
        o.matchTarget = target
        let run = try DistributionMatching(model: m, pairs: TinyModel.trainPairs(3), options: o)
        return (Array(try run.trainingRows(step: step).prefix(o.batchSize)), run)
    }

    /// With the anchor target, x_t − t·u recovers an anchor of the bank for every matching row: u is
    /// ε − x0 for the x0 that x_t was made from. With the reference target it is not (the reference
    /// predicts an average, not one image), and the rows' x_t and t are the same draws either way.
    func testAnchorTargetIsTheAnchorsOwnVelocity() throws {
        let (anchorRows, run) = try rows(.anchor, step: 3)
        let (referenceRows, _) = try rows(nil, step: 3)
        let anchors = run.pairs.flatMap { p in (0..<2).map { run.bank.anchor(p.explicit, $0)! } }
        func nearestAnchorDistance(_ r: (xt: [Float], t: Float, target: [Float])) -> Float {
            let x0 = zip(r.xt, r.target).map { $0 - r.t * $1 }
            return anchors.map { a in (0..<a.count).map { abs(a[$0] - x0[$0]) }.max()! }.min()!
        }
        XCTAssertEqual(anchorRows.count, 2)
        for (a, r) in zip(anchorRows, referenceRows) {
            XCTAssertEqual(a.xt, r.xt)
            XCTAssertEqual(a.t, r.t)
            XCTAssertGreaterThan(a.t, 0.05, "x0 is recovered through t")
            XCTAssertLessThan(nearestAnchorDistance(a), 1e-4)
            XCTAssertGreaterThan(nearestAnchorDistance(r), 1e-2)
        }
    }

    /// The anchor target changes only the matching rows' targets: every keep and replay row is still
    /// taught the reference's velocity under its own prompt (explicit, empty, replayed caption),
    /// computed here by a forward of its own, though the run's reference pass now skips the matching
    /// rows past the keep rows.
    func testAnchorTargetKeepsTheKeepAndReplayTargets() throws {
        let m = try TinyModel.model()
        var o = DistributionMatchingTests.options()
        o.matchTarget = .anchor
        o.keepPerStep = 2
        o.replayPerStep = 3
        o.batchSize = 4
        let pairs = TinyModel.trainPairs(5)
        let run = try DistributionMatching(model: m, pairs: pairs, options: o)
        let rows = try run.trainingRows(step: 5)
        XCTAssertEqual(rows.count, 4 + 2 * 2 + 3)  // matching 4 | explicit 2 | unconditional 2 | replay 3
        func reference(_ r: (xt: [Float], t: Float, target: [Float]), _ prompt: String) throws -> [Float] {
            let text = try m.encode([prompt])
            let xt = Tensor(shape: [1, m.packing.tokens, m.packing.tokenChannels], values: r.xt)
            return try m.transformer.forward(FluxInput(image: xt, text: text.states, pooled: text.pooled, timesteps: [r.t]),
                                             workspace: m.inferenceWorkspace(rows: 1), useAdapter: false).array
        }
        func nearest(_ i: Int, among prompts: [String]) throws -> Float {
            try prompts.map { p in zip(rows[i].target, try reference(rows[i], p)).map { abs($0 - $1) }.max()! }.min()!
        }
        let explicit = pairs.map(\.explicit)
        XCTAssertEqual(run.replayCaptions.count, min(o.replayPool, o.replayPerStep * o.steps), "at most perStep × steps")
        for i in 4..<6 { XCTAssertLessThan(try nearest(i, among: explicit), 1e-4, "explicit keep row") }
        for i in 6..<8 { XCTAssertLessThan(try nearest(i, among: [""]), 1e-4, "unconditional keep row") }
        for i in 8..<11 { XCTAssertLessThan(try nearest(i, among: run.replayCaptions), 1e-4, "replay row \(i)") }
        for i in 0..<4 { XCTAssertGreaterThan(try nearest(i, among: explicit), 1e-2, "matching row \(i)") }
    }

    /// The anchor target trains: twelve steps lower the matching term against it on batches never
    /// trained on, and the adapter they give differs from the reference target's.
    func testAnchorTargetTrainsAnotherAdapter() throws {
        func train(_ target: DistributionMatchingOptions.MatchTarget?) throws -> (before: Float, after: Float, adapter: Tensor) {
            let m = try TinyModel.model()
            var o = DistributionMatchingTests.options(steps: 12)
            o.matchTarget = target
            o.learningRate = 3e-3
            o.preserveWeight = 0  // the loss is the matching term alone
            let run = try DistributionMatching(model: m, pairs: TinyModel.trainPairs(2), options: o)
            func heldOut() throws -> Float { try (100..<108).map { try run.probe(step: $0, gradient: false).loss }.reduce(0, +) }
            let before = try heldOut()
            while try run.next() != nil {}
            return (before, try heldOut(), try XCTUnwrap(m.adapter).flat.copy())
        }
        let a = try train(.anchor)
        let r = try train(.reference)
        XCTAssertLessThan(a.after, a.before)
        XCTAssertGreaterThan(a.before, r.before, "the anchors' velocities are further from the reference than its average")
        var differ = false
        for i in 0..<a.adapter.count where abs(a.adapter[i] - r.adapter[i]) > 1e-6 { differ = true; break }
        XCTAssertTrue(differ)
    }
}
