import EruDiff
import Foundation
import Models
import Tensors
import World
import XCTest

/// DK-DM with verified anchors (`DistributionMatchingOptions.verifyAnchors`) on banks of renders whose
/// rightness the test chooses: a right anchor is a render of the pair's explicit caption, a wrong one
/// the same caption with another shape.
final class VerifiedAnchorsTests: XCTestCase {
    static let settings = AnchorBank.Settings(sampling: SamplingSettings(steps: 2, guidance: 3), seed: 5)

    /// A bank holding, for each pair, one render per entry of `rightness` (true: right); render j of
    /// pair i is drawn with seed 40 + 10·i + `seeds[j]` (default j).
    func bank(_ model: FlowModel, _ pairs: [KnowledgePair], _ rightness: [[Bool]], seeds: [Int]? = nil) throws -> AnchorBank {
        let pk = model.packing
        let archive = StateArchive()
        let prompts = pairs.map(\.explicit)
        try archive.set("b.prompts", json: prompts)
        try archive.set("b.settings", json: Self.settings)
        for (i, p) in pairs.enumerated() {
            let right = try XCTUnwrap(Caption.parse(p.explicit))
            var wrong = right
            wrong.shape = right.shape == .square ? .circle : .square
            let images = Tensor(zeros: [rightness[i].count, pk.height, pk.width, pk.channels])
            for (j, ok) in rightness[i].enumerated() {
                var rng = RNG(seed: 40 + UInt64(10 * i + (seeds?[j] ?? j)))
                _ = Renderer.render(ok ? right : wrong, rng: &rng, into: images.data + j * pk.pixelCount)
            }
            archive.set("b.\(i)", pk.pack(images))
        }
        let b = AnchorBank(settings: Self.settings, model: model)
        try b.restore(from: archive, prefix: "b.")
        return b
    }

    func options(perPair: Int, maxDraws: Int?, verify: Bool = true, steps: Int = 0) -> DistributionMatchingOptions {
        var o = DistributionMatchingTests.options(steps: steps)
        o.anchors = Self.settings
        o.anchorsPerPair = perPair
        o.verifyAnchors = verify
        o.maxAnchorDraws = maxDraws
        return o
    }

    /// The renders really are read as intended (otherwise the tests below would prove nothing).
    func testRendersVerifyAsChosen() throws {
        let m = try TinyModel.model()
        let pairs = TinyModel.trainPairs(2)
        let b = try bank(m, pairs, [[false, true], [true, false]])
        for (i, p) in pairs.enumerated() {
            let expect = try XCTUnwrap(Caption.parse(p.explicit))
            for j in 0..<2 {
                let image = m.packing.unpack(try XCTUnwrap(b.anchor(p.explicit, j)))
                let v = try Verifier().verify(signedUnit: image.data)
                XCTAssertEqual(KnowledgeMetrics.isCorrect(found: v.attributes, expected: expect), i == j ? false : true,
                               "pair \(i) anchor \(j)")
            }
        }
    }

    /// Enough right anchors in the bank: nothing is drawn, and the report counts every anchor verified
    /// up to `maxDraws`.
    func testReportCountsAcceptedAnchors() throws {
        let m = try TinyModel.model()
        let pairs = TinyModel.trainPairs(2)
        let b = try bank(m, pairs, [[false, true, false, true, true], [true, true, false, false, false]])
        let run = try DistributionMatching(model: m, pairs: pairs, options: options(perPair: 2, maxDraws: 4), bank: b)
        while try run.next() != nil {}
        let check = try XCTUnwrap(run.output?.anchorCheck)
        XCTAssertEqual(check, .init(verified: 8, accepted: 4, short: 0, none: 0))
        XCTAssertEqual(pairs.map { b.count($0.explicit) }, [5, 5], "nothing drawn")
    }

    /// A prompt short of right anchors is drawn for up to `maxDraws` anchors and no further (the tiny
    /// random model draws noise, which never verifies); its pair then counts as having none.
    func testDrawsStopAtMaxDraws() throws {
        let m = try TinyModel.model()
        let pairs = TinyModel.trainPairs(2)
        let b = try bank(m, pairs, [[false, false], [true, true]])
        let run = try DistributionMatching(model: m, pairs: pairs, options: options(perPair: 2, maxDraws: 5), bank: b)
        while try run.next() != nil {}
        XCTAssertEqual(b.count(pairs[0].explicit), 5)
        XCTAssertEqual(b.count(pairs[1].explicit), 2)
        XCTAssertEqual(run.output?.anchorCheck, .init(verified: 7, accepted: 2, short: 1, none: 1))
    }

    /// Training batches use only the accepted anchors: a run over [wrong, right, wrong, right] has the
    /// same loss as an unverified run over the two right ones alone; without verification it differs.
    func testTrainingUsesOnlyAcceptedAnchors() throws {
        let pairs = TinyModel.trainPairs(3)
        func loss(_ rightness: [Bool], verify: Bool, seeds: [Int]? = nil) throws -> Float {
            let m = try TinyModel.model()
            let b = try bank(m, pairs, Array(repeating: rightness, count: 3), seeds: seeds)
            let run = try DistributionMatching(model: m, pairs: pairs,
                                               options: options(perPair: 2, maxDraws: 4, verify: verify, steps: 10), bank: b)
            return try run.probe(step: 1, gradient: false).loss
        }
        let verified = try loss([false, true, false, true], verify: true)
        let unverified = try loss([false, true, false, true], verify: false)
        let rightOnly = try loss([true, true], verify: false, seeds: [1, 3])
        XCTAssertEqual(verified, rightOnly, accuracy: 1e-6 * abs(rightOnly))
        XCTAssertNotEqual(unverified, rightOnly)
    }

    /// A run stopped during training and resumed from its saved state (which holds the bank, not the
    /// verdicts) trains on the same anchors: the same adapter as an uninterrupted run.
    func testResumeChoosesTheSameAnchors() throws {
        let pairs = TinyModel.trainPairs(3)
        let rightness = Array(repeating: [false, true, false, true], count: 3)
        let o = options(perPair: 2, maxDraws: 4, steps: 6)
        let m1 = try TinyModel.model()
        let full = try DistributionMatching(model: m1, pairs: pairs, options: o, bank: try bank(m1, pairs, rightness)).run()
        XCTAssertEqual(full.anchorCheck, .init(verified: 12, accepted: 6, short: 0, none: 0))
        let m2 = try TinyModel.model()
        let a = try DistributionMatching(model: m2, pairs: pairs, options: o, bank: try bank(m2, pairs, rightness))
        while a.step < 3 { _ = try a.next() }
        let archive = StateArchive()
        try a.save(into: archive, prefix: "dkdm.")
        let m3 = try TinyModel.model()
        let b = try DistributionMatching(model: m3, pairs: pairs, options: o)
        try b.restore(from: archive, prefix: "dkdm.")
        let r = try b.run()
        XCTAssertTrue(try XCTUnwrap(m3.adapter).flat.array == XCTUnwrap(m1.adapter).flat.array, "the adapters differ")
        XCTAssertEqual(r.loss, full.loss)
        XCTAssertEqual(r.anchorCheck, full.anchorCheck)
    }

    /// Verification needs explicit prompts the verifier can check, and reference anchors.
    func testRefusesWhatCannotBeVerified() throws {
        let m = try TinyModel.model()
        let odd = [KnowledgePair(implicit: "the flag of Japan", explicit: "something nice")]
        XCTAssertThrowsError(try DistributionMatching(model: m, pairs: odd, options: options(perPair: 2, maxDraws: nil)))
        var o = options(perPair: 2, maxDraws: nil)
        o.anchorSource = .policy
        o.anchorRefreshEvery = 5
        XCTAssertThrowsError(try o.validate())
        XCTAssertThrowsError(try options(perPair: 3, maxDraws: 2).validate())
    }
}
