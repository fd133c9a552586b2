import XCTest
@testable import World

/// DESIGN §5's metrics on small hand-made sets of verified images whose answers are worked out by hand.
final class MetricsTests: XCTestCase {
    private let flag = KnowledgeItem(
        id: "flags/x", concept: "flags/x", family: .cultural, subdomain: "flags", split: .train,
        implicit: "the flag of X", explicit: "a red circle on a white background",
        superficial: "a white circle on a red background",
        expect: Attributes(shape: .circle, color: .red, background: .white),
        superficialExpect: Attributes(shape: .circle, color: .white, background: .red))
    private let flame = KnowledgeItem(
        id: "flame-tests/y", concept: "flame-tests/y", family: .naturalScience, subdomain: "flame-tests",
        split: .testConcept, implicit: "a flame test of Y", explicit: "a green drop", superficial: "an orange drop",
        expect: Attributes(shape: .drop, color: .green),
        superficialExpect: Attributes(shape: .drop, color: .orange))

    private func images(_ item: KnowledgeItem, _ kind: KnowledgeItem.PromptKind, _ found: [Attributes?]) -> [VerifiedImage] {
        found.map { VerifiedImage(item: item, prompt: kind, found: $0) }
    }

    func testPerImageScoreCountsOnlyExpectedAttributes() {
        let expect = flag.expect
        // Size and position are not expected, so they do not count either way.
        let twoOfThree = Attributes(shape: .circle, color: .red, background: .black, size: .large, position: .left)
        XCTAssertEqual(KnowledgeMetrics.score(found: twoOfThree, expected: expect), 2.0 / 3.0, accuracy: 1e-12)
        XCTAssertFalse(KnowledgeMetrics.isCorrect(found: twoOfThree, expected: expect))
        let all = Attributes(shape: .circle, color: .red, background: .white, size: .small, position: .top)
        XCTAssertEqual(KnowledgeMetrics.score(found: all, expected: expect), 1)
        XCTAssertTrue(KnowledgeMetrics.isCorrect(found: all, expected: expect))
        // No clear object: nothing found.
        XCTAssertEqual(KnowledgeMetrics.score(found: nil, expected: expect), 0)
        XCTAssertFalse(KnowledgeMetrics.isCorrect(found: nil, expected: expect))
        // A partial read (shape unknown) gets credit for what it did find.
        XCTAssertEqual(KnowledgeMetrics.score(found: Attributes(color: .red, background: .white), expected: expect),
                       2.0 / 3.0, accuracy: 1e-12)
        // Position counts when expected.
        let sun = Attributes(shape: .circle, color: .yellow, background: .lightBlue, position: .top)
        XCTAssertEqual(KnowledgeMetrics.score(found: Attributes(shape: .circle, color: .yellow, background: .lightBlue,
                                                                position: .bottom), expected: sun), 0.75)
    }

    func testStatsAverageOverImages() throws {
        let right = flag.expect
        let swapped = flag.superficialExpect  // shape right, colour and background wrong: 1/3
        let s = try XCTUnwrap(KnowledgeMetrics.stats(images(flag, .implicit, [right, swapped, nil, right])))
        XCTAssertEqual(s.images, 4)
        XCTAssertEqual(s.score, (1 + 1.0 / 3 + 0 + 1) / 4, accuracy: 1e-12)
        XCTAssertEqual(s.accuracy, 0.5)
        // The swapped image has two attributes wrong; the image without an object counts as "object".
        XCTAssertEqual(s.wrong, ["color": 1, "background": 1, "object": 1])
        XCTAssertNil(KnowledgeMetrics.stats([]))
    }

    /// The clean share counts the images the verifier explained whole, right or wrong; it is nil when
    /// any image was not read for it.
    func testCleanShareCountsExplainedImages() throws {
        let right = flag.expect
        let read = [(right, true), (nil, true), (right, false), (flag.superficialExpect, true)].map {
            VerifiedImage(item: flag, prompt: .implicit, found: $0.0, clean: $0.1)
        }
        let s = try XCTUnwrap(KnowledgeMetrics.stats(read))
        XCTAssertEqual(s.clean, 0.75)
        XCTAssertEqual(s.accuracy, 0.5)
        XCTAssertNil(try XCTUnwrap(KnowledgeMetrics.stats(images(flag, .implicit, [right]))).clean)
        XCTAssertNil(try XCTUnwrap(KnowledgeMetrics.stats(read + images(flag, .implicit, [right]))).clean)
        let g = KnowledgeMetrics.group(read)
        XCTAssertEqual(g.implicit?.clean, 0.75)
    }

    func testErrorsNameWhatAnImageGotWrong() {
        let expect = flag.expect
        XCTAssertEqual(KnowledgeMetrics.errors(found: expect, expected: expect), [])
        XCTAssertEqual(KnowledgeMetrics.errors(found: Attributes(shape: .square, color: .red, background: .black),
                                               expected: expect), ["shape", "background"])
        // No object read where a shape is expected: "object", not the attributes it could not read.
        XCTAssertEqual(KnowledgeMetrics.errors(found: Attributes(background: .gray), expected: expect), ["object"])
        XCTAssertEqual(KnowledgeMetrics.errors(found: nil, expected: expect), ["object"])
        // With no shape expected, a missing object is judged on the attributes that are expected.
        XCTAssertEqual(KnowledgeMetrics.errors(found: Attributes(background: .gray), expected: Attributes(background: .white)),
                       ["background"])
    }

    func testGapIsOneWhenImplicitMatchesExplicitAndZeroWhenItMatchesSuperficial() throws {
        let explicit = images(flag, .explicit, [flag.expect, flag.expect])
        let superficial = images(flag, .superficial, [flag.superficialExpect, flag.superficialExpect])
        let asExplicit = images(flag, .implicit, [flag.expect, flag.expect])
        let asSuperficial = images(flag, .implicit, [flag.superficialExpect, flag.superficialExpect])
        XCTAssertEqual(try XCTUnwrap(KnowledgeMetrics.group(explicit + superficial + asExplicit).knowledgeGap),
                       1, accuracy: 1e-12)
        XCTAssertEqual(try XCTUnwrap(KnowledgeMetrics.group(explicit + superficial + asSuperficial).knowledgeGap),
                       0, accuracy: 1e-12)
        // Half the implicit images right, half misread: s_i = (1 + 1/3)/2, s_e = 1, s_s = 1/3 -> 1/2.
        let half = images(flag, .implicit, [flag.expect, flag.superficialExpect])
        XCTAssertEqual(try XCTUnwrap(KnowledgeMetrics.group(explicit + superficial + half).knowledgeGap),
                       0.5, accuracy: 1e-12)
        // Worse than the misreading gives a negative gap, reported as it is.
        let nothing = images(flag, .implicit, [nil, nil])
        XCTAssertEqual(try XCTUnwrap(KnowledgeMetrics.group(explicit + superficial + nothing).knowledgeGap),
                       -0.5, accuracy: 1e-12)
    }

    func testGapIsNilWhenUndefined() {
        // Explicit drawn no better than superficial: the denominator is 0.
        let explicitAsSuperficial = images(flag, .explicit, [flag.superficialExpect])
        let superficial = images(flag, .superficial, [flag.superficialExpect])
        let implicit = images(flag, .implicit, [flag.expect])
        XCTAssertNil(KnowledgeMetrics.group(explicitAsSuperficial + superficial + implicit).knowledgeGap)
        // Negative denominator: superficial images score higher than explicit ones.
        let explicitEmpty = images(flag, .explicit, [nil])
        XCTAssertNil(KnowledgeMetrics.group(explicitEmpty + superficial + implicit).knowledgeGap)
        // A tiny positive denominator is below the threshold.
        XCTAssertNil(KnowledgeMetrics.knowledgeGap(implicit: 0.9, explicit: 0.51, superficial: 0.5))
        XCTAssertEqual(try XCTUnwrap(KnowledgeMetrics.knowledgeGap(implicit: 0.9, explicit: 0.51, superficial: 0.5,
                                                                   minimumDenominator: 0.001)), 40, accuracy: 1e-9)
        // Missing prompt kinds: no gap, but the stats that exist are reported.
        let onlyImplicit = KnowledgeMetrics.group(implicit)
        XCTAssertNil(onlyImplicit.knowledgeGap)
        XCTAssertEqual(onlyImplicit.implicit?.score, 1)
        XCTAssertNil(onlyImplicit.explicit)
        XCTAssertNil(KnowledgeMetrics.group([]).knowledgeGap)
    }

    func testGapUsesOnlyItemsWithAllThreePrompts() throws {
        // The flame item has only implicit images: it counts for the implicit score but not the gap.
        let flagImages = images(flag, .explicit, [flag.expect]) + images(flag, .superficial, [flag.superficialExpect])
            + images(flag, .implicit, [flag.expect])
        let flameImplicit = images(flame, .implicit, [nil, nil])
        let g = KnowledgeMetrics.group(flagImages + flameImplicit)
        XCTAssertEqual(try XCTUnwrap(g.knowledgeGap), 1, accuracy: 1e-12)
        XCTAssertEqual(g.items, 2)
        XCTAssertEqual(try XCTUnwrap(g.implicit).score, 1.0 / 3.0, accuracy: 1e-12)
        XCTAssertEqual(try XCTUnwrap(g.implicit).images, 3)
    }

    func testReportGroupsBySplitFamilySubdomainAndItem() throws {
        // flag (train): implicit misread -> gap 0.  flame (test-concept): implicit right -> gap 1.
        // flame: s_e = 1, s_s = 1/2 (shape right, colour wrong).
        var all = images(flag, .explicit, [flag.expect]) + images(flag, .superficial, [flag.superficialExpect])
            + images(flag, .implicit, [flag.superficialExpect])
        all += images(flame, .explicit, [flame.expect]) + images(flame, .superficial, [flame.superficialExpect])
            + images(flame, .implicit, [flame.expect])
        let r = KnowledgeMetrics.report(all)
        XCTAssertEqual(Set(r.bySplit.keys), ["train", "test-concept"])
        XCTAssertEqual(Set(r.byFamily.keys), ["cultural", "natural-science"])
        XCTAssertEqual(Set(r.bySubdomain.keys), ["flags", "flame-tests"])
        XCTAssertEqual(Set(r.byItem.keys), ["flags/x", "flame-tests/y"])
        XCTAssertEqual(try XCTUnwrap(r.bySplit["train"]?.knowledgeGap), 0, accuracy: 1e-12)
        XCTAssertEqual(try XCTUnwrap(r.bySplit["test-concept"]?.knowledgeGap), 1, accuracy: 1e-12)
        XCTAssertEqual(try XCTUnwrap(r.byItem["flame-tests/y"]?.superficial?.score), 0.5, accuracy: 1e-12)
        // Overall: s_i = (1/3 + 1)/2, s_e = 1, s_s = (1/3 + 1/2)/2 -> (2/3 - 5/12)/(1 - 5/12) = 3/7.
        XCTAssertEqual(try XCTUnwrap(r.overall.knowledgeGap), 3.0 / 7.0, accuracy: 1e-12)
        XCTAssertEqual(try XCTUnwrap(r.overall.implicit?.accuracy), 0.5)
        XCTAssertEqual(r.overall.items, 2)
    }
}
