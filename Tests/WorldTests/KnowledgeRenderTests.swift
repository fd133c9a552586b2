import Tensors
import XCTest
@testable import World

/// Every item's explicit caption renders to images the verifier reads as the item's `expect`, and its
/// superficial caption to images that score below 1 against `expect`: the anchors of the knowledge
/// base are drawable and checkable in this world.
final class KnowledgeRenderTests: XCTestCase {
    func testExplicitCaptionsRenderToTheirExpectedAttributes() throws {
        let base = try KnowledgeBase.bundled()
        let verifier = Verifier()
        let draws = 8
        var misreads: [String] = []
        var images = 0
        for (index, item) in base.items.enumerated() {
            let stated = try XCTUnwrap(Caption.parse(item.explicit), item.id)
            let wrong = try XCTUnwrap(Caption.parse(item.superficial), item.id)
            for d in 0..<draws {
                var rng = RNG(seed: 5_000 + UInt64(index), stream: UInt64(d))
                let right = Renderer.image(stated, rng: &rng)
                let read = try verifier.verify(right.image)
                images += 1
                if !KnowledgeMetrics.isCorrect(found: read.attributes, expected: item.expect) {
                    misreads.append("\(item.id) draw \(d): expected \(KnowledgeBase.describe(item.expect)), "
                                    + "read \(KnowledgeBase.describe(read.attributes))")
                }
                // The misreading's render must not pass as the right answer.
                let misread = Renderer.image(wrong, rng: &rng)
                let readWrong = try verifier.verify(misread.image)
                XCTAssertLessThan(KnowledgeMetrics.score(found: readWrong.attributes, expected: item.expect), 1,
                                  "\(item.id) superficial draw \(d)")
            }
        }
        XCTAssertEqual(misreads, [], "\(misreads.count) of \(images) explicit renders misread")
    }
}
