import XCTest
@testable import EruDiff
@testable import World

/// NO-RL's built-in rewards on hand-made verifier readings.
final class WorldRewardTests: XCTestCase {
    private let expect = Attributes(shape: .circle, color: .red, background: .white)

    private func reading(_ shape: Shape?, found: Bool = true, circleFit: Float = 0) -> Verification {
        Verification(attributes: found ? Attributes(shape: shape, color: .red, background: .white) : Attributes(background: .white),
                     foundObject: found, confidence: found ? 0.95 : 0, runnerUp: nil, shapeMargin: 0,
                     objectRGB: .zero, backgroundRGB: .one, centerX: 16, centerY: 16, extent: found ? 20 : 0,
                     shapeFit: found ? [.circle: circleFit, .pentagon: 0.95] : [:])
    }

    func testScoreIsTheKnowledgeScore() {
        XCTAssertEqual(WorldReward.score.reward(reading(.circle, circleFit: 0.95), expected: expect), 1)
        XCTAssertEqual(WorldReward.score.reward(reading(.pentagon, circleFit: 0.9), expected: expect), 2.0 / 3, accuracy: 1e-12)
        XCTAssertEqual(WorldReward.score.reward(reading(.pentagon, circleFit: 0.1), expected: expect), 2.0 / 3, accuracy: 1e-12)
    }

    /// A wrong shape earns half its expected template's fit on top of the score, so it ranks by how
    /// near it came but stays below every right sample; right samples, missing objects and prompts
    /// that name no shape score as before.
    func testGradedRanksOnlyTheWrongShapes() {
        let g = WorldReward.graded
        XCTAssertEqual(g.reward(reading(.circle, circleFit: 0.95), expected: expect), 1)
        XCTAssertEqual(g.reward(reading(.circle, circleFit: 0.6), expected: expect), 1)
        let near = g.reward(reading(.pentagon, circleFit: 0.9), expected: expect)
        let far = g.reward(reading(.star, circleFit: 0.2), expected: expect)
        XCTAssertEqual(near, 2.0 / 3 + 0.5 * 0.9 / 3, accuracy: 1e-6)
        XCTAssertEqual(far, 2.0 / 3 + 0.5 * 0.2 / 3, accuracy: 1e-6)
        XCTAssertLessThan(near, 1)
        let none = reading(nil, found: false)
        XCTAssertEqual(g.reward(none, expected: expect), WorldReward.score.reward(none, expected: expect))
        let noShape = Attributes(color: .red, background: .white)
        XCTAssertEqual(g.reward(reading(.star, circleFit: 0.2), expected: noShape), 1)
    }

    /// A group that draws the outline wrong every time has equal scores and is skipped; graded, it
    /// has advantages, and its worst attempt is pushed hardest.
    func testGradedGivesAllWrongGroupsASignal() throws {
        let group = [0.9, 0.3, 0.7].map { reading(.pentagon, circleFit: $0) }
        XCTAssertNil(NegativeAdvantage.advantages(group.map { WorldReward.score.reward($0, expected: expect) }, clip: 2))
        let adv = try XCTUnwrap(NegativeAdvantage.advantages(group.map { WorldReward.graded.reward($0, expected: expect) }, clip: 2))
        XCTAssertEqual(adv.firstIndex(of: adv.min()!), 1)
        XCTAssertEqual(adv[0], 0)
    }
}
