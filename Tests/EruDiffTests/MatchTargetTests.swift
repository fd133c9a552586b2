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
        return (try run.matchingRows(step: step), run)
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
