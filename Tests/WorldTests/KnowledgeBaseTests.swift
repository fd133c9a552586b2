import Foundation
import XCTest
@testable import World

/// The bundled knowledge base: it loads, meets the size and coverage minimums of issue 5, keeps its
/// splits apart, states every answer in a caption the world reads, and bad files fail loudly.
final class KnowledgeBaseTests: XCTestCase {
    private var base: KnowledgeBase!

    override func setUpWithError() throws {
        base = try KnowledgeBase.bundled()
    }

    func testBundledFileLoadsFromTheResourceBundle() throws {
        XCTAssertTrue(base.source.hasSuffix("Resources/knowledge.json"), base.source)
        XCTAssertNotNil(KnowledgeBase.bundledURL())
        // Built by SwiftPM, the copy in the resource bundle beside the test binary is the one read.
        let bundle = Bundle.main.bundleURL.appendingPathComponent("erudiff_World.resources")
        if FileManager.default.fileExists(atPath: bundle.path) {
            XCTAssertTrue(base.source.hasPrefix(bundle.path), base.source)
        }
        // The explicit path gives the same items.
        let again = try KnowledgeBase.load(path: base.source)
        XCTAssertEqual(again.items, base.items)
    }

    func testCountsPerSplitFamilyAndSubdomain() {
        XCTAssertGreaterThanOrEqual(base.items.count, 150)
        let train = base.items(in: .train).count
        XCTAssertTrue((90...110).contains(train), "train has \(train) items")
        XCTAssertGreaterThanOrEqual(base.items(in: .testParaphrase).count, 25)
        XCTAssertGreaterThanOrEqual(base.items(in: .testConcept).count, 25)
        for family in KnowledgeItem.Family.allCases {
            XCTAssertGreaterThanOrEqual(base.items(in: family).count, 30, family.rawValue)
            XCTAssertGreaterThanOrEqual(base.items(in: family).filter { $0.split == .testConcept }.count, 5,
                                        family.rawValue)
        }
        XCTAssertGreaterThanOrEqual(base.subdomains.count, 12)
        for subdomain in base.subdomains {
            let items = base.items(inSubdomain: subdomain)
            XCTAssertGreaterThanOrEqual(items.count, 4, subdomain)
            XCTAssertGreaterThanOrEqual(items.filter { $0.split == .train }.count, 3, subdomain)
            XCTAssertGreaterThanOrEqual(items.filter { $0.split == .testConcept }.count, 1, subdomain)
            XCTAssertEqual(Set(items.map(\.family)).count, 1, "\(subdomain) spans families")
        }
    }

    func testNoTestConceptConceptOrPromptAppearsInTrain() {
        let train = base.items(in: .train)
        let trainConcepts = Set(train.map(\.concept))
        let trainPrompts = Set(train.map { KnowledgeBase.normalizedPrompt($0.implicit) })
        for item in base.items(in: .testConcept) {
            XCTAssertFalse(trainConcepts.contains(item.concept), item.id)
            XCTAssertFalse(trainPrompts.contains(KnowledgeBase.normalizedPrompt(item.implicit)), item.id)
        }
    }

    func testEveryParaphraseRewordsATrainConcept() {
        let train = Dictionary(uniqueKeysWithValues: base.items(in: .train).map { ($0.concept, $0) })
        for item in base.items(in: .testParaphrase) {
            guard let original = train[item.concept] else {
                XCTFail("\(item.id): concept \(item.concept) is not in train"); continue
            }
            XCTAssertNotEqual(KnowledgeBase.normalizedPrompt(item.implicit),
                              KnowledgeBase.normalizedPrompt(original.implicit), item.id)
            XCTAssertEqual(item.expect, original.expect, item.id)
        }
    }

    func testSuperficialAnswerDiffersFromTheRightOne() {
        for item in base.items {
            XCTAssertNotEqual(item.superficialExpect, item.expect, item.id)
            XCTAssertLessThan(KnowledgeMetrics.score(found: item.superficialExpect, expected: item.expect), 1,
                              "\(item.id): the superficial image would score as right")
        }
    }

    func testExplicitAndSuperficialCaptionsParseToTheirAttributes() {
        for item in base.items {
            XCTAssertEqual(Caption.parse(item.explicit), item.expect, "\(item.id): \(item.explicit)")
            XCTAssertEqual(Caption.parse(item.superficial), item.superficialExpect,
                           "\(item.id): \(item.superficial)")
        }
    }

    /// A proxy for WordPiece length: runs of letters or digits plus each punctuation mark. The flow
    /// model reads at most about 24 text tokens; implicit prompts stay well inside.
    func testImplicitPromptsAreShort() {
        for item in base.items {
            var count = 0, inWord = false
            for ch in item.implicit {
                if ch.isLetter || ch.isNumber {
                    if !inWord { count += 1; inWord = true }
                } else {
                    inWord = false
                    if !ch.isWhitespace { count += 1 }
                }
            }
            XCTAssertLessThanOrEqual(count, 16, "\(item.id): \(item.implicit)")
        }
    }

    func testColoursAndShapesAreNotAllOneAnswer() {
        let colors = Dictionary(grouping: base.items, by: { $0.expect.color })
        let shapes = Dictionary(grouping: base.items, by: { $0.expect.shape })
        XCTAssertGreaterThanOrEqual(colors.count, 10)
        XCTAssertGreaterThanOrEqual(shapes.count, 10)
        XCTAssertLessThan(colors.values.map(\.count).max()!, base.items.count / 3)
        XCTAssertLessThan(shapes.values.map(\.count).max()!, base.items.count / 2)
    }

    func testBuiltInSets() throws {
        XCTAssertEqual(try base.set(named: "world:train"), base.items(in: .train))
        XCTAssertEqual(try base.set(named: "world:test-paraphrase"), base.items(in: .testParaphrase))
        XCTAssertEqual(try base.set(named: "world:test-concept"), base.items(in: .testConcept))
        let test = try base.set(named: "world:test")
        XCTAssertEqual(test.count, base.items(in: .testParaphrase).count + base.items(in: .testConcept).count)
        XCTAssertFalse(test.contains { $0.split == .train })
        XCTAssertThrowsError(try base.set(named: "world:nope")) { error in
            XCTAssertEqual(error as? KnowledgeBaseError, .unknownSet("world:nope"))
        }
        XCTAssertEqual(base.item(id: "flags/japan")?.expect,
                       Attributes(shape: .circle, color: .red, background: .white))
        XCTAssertNil(base.item(id: "no/such/item"))
    }

    func testItemsRoundTripThroughCodable() throws {
        let data = try JSONEncoder().encode(base.items)
        let decoded = try KnowledgeBase(data: data, source: "round trip")
        XCTAssertEqual(decoded.items, base.items)
    }
}
