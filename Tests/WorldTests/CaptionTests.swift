import Tensors
import XCTest
@testable import World

final class CaptionTests: XCTestCase {
    func testCanonicalCaption() {
        XCTAssertEqual(Caption.make(Attributes(shape: .circle, color: .red, background: .white)),
                       "a red circle on a white background")
        XCTAssertEqual(Caption.make(Attributes(shape: .pentagon, color: .orange, background: .lightBlue, size: .large,
                                               position: .top)),
                       "a large orange pentagon at the top of a light blue background")
        XCTAssertEqual(Caption.make(Attributes(shape: .ring, color: .orange)), "an orange ring")
    }

    /// Every template with every attribute said or unsaid, canonical words and random synonyms,
    /// parses back to exactly the attributes it was made from.
    func testMakeThenParseRoundTripsEveryTemplate() {
        var rng = RNG(seed: 3)
        var checked = 0
        for template in 0..<Caption.templateCount {
            for shape in Shape.allCases {
                for _ in 0..<40 {
                    let color = PaletteColor.allCases[rng.int(below: 12)]
                    var a = Attributes(shape: shape, color: color)
                    if rng.uniform() < 0.6 {
                        a.background = PaletteColor.allCases.filter { $0 != color }[rng.int(below: 11)]
                    }
                    if rng.uniform() < 0.6 { a.size = Size.allCases[rng.int(below: 2)] }
                    if rng.uniform() < 0.6 { a.position = Position.allCases[rng.int(below: 5)] }
                    let plain = Caption.make(a, template: template)
                    XCTAssertEqual(Caption.parse(plain), a, plain)
                    let varied = Caption.make(a, template: template, rng: &rng)
                    XCTAssertEqual(Caption.parse(varied), a, varied)
                    checked += 2
                }
            }
        }
        XCTAssertEqual(checked, Caption.templateCount * 12 * 80)
    }

    func testEverySynonymParses() {
        for s in Shape.allCases {
            for w in CaptionLexicon.shapeWords(s) {
                XCTAssertEqual(Caption.parse("a green \(w) on a black background"),
                               Attributes(shape: s, color: .green, background: .black), w)
            }
        }
        for c in PaletteColor.allCases {
            for w in CaptionLexicon.colorWords(c) {
                let other: PaletteColor = c == .white ? .black : .white
                XCTAssertEqual(Caption.parse("a \(w) star, \(other.rawValue) backdrop"),
                               Attributes(shape: .star, color: c, background: other), w)
                XCTAssertEqual(Caption.parse("\(other.rawValue) background with a \(w) star"),
                               Attributes(shape: .star, color: c, background: other), w)
            }
        }
        for p in Position.allCases {
            for w in CaptionLexicon.positionPhrases(p) {
                XCTAssertEqual(Caption.parse("a red heart \(w)")?.position, p, w)
            }
        }
    }

    func testRandomCaptionsStateShapeAndColourAndVary() {
        var rng = RNG(seed: 11)
        var texts = Set<String>()
        var saidSize = 0, saidPosition = 0, saidBackground = 0
        for i in 0..<3000 {
            let (text, a) = Caption.random(&rng)
            if i < 12 { print("caption sample: \(text)") }
            XCTAssertNotNil(a.shape); XCTAssertNotNil(a.color)
            XCTAssertNotEqual(a.color, a.background)
            XCTAssertEqual(Caption.parse(text), a, text)
            texts.insert(text)
            if a.size != nil { saidSize += 1 }
            if a.position != nil { saidPosition += 1 }
            if a.background != nil { saidBackground += 1 }
        }
        XCTAssertGreaterThan(texts.count, 2500)
        // Each optional attribute is left unsaid a good share of the time.
        for said in [saidSize, saidPosition, saidBackground] { XCTAssert((900...2400).contains(said), "\(said)") }
    }

    func testHandWrittenVariantsAndNonCaptions() {
        XCTAssertEqual(Caption.parse("A brown thin rectangle on a white background"),
                       Attributes(shape: .rectangle, color: .brown, background: .white))
        XCTAssertEqual(Caption.parse("a red circle on white"), Attributes(shape: .circle, color: .red, background: .white))
        XCTAssertEqual(Caption.parse("Big light-blue disk, centred, grey backdrop."),
                       Attributes(shape: .circle, color: .lightBlue, background: .gray, size: .large, position: .center))
        XCTAssertNil(Caption.parse("the flag of Japan"))
        XCTAssertNil(Caption.parse("a stop sign"))
        XCTAssertNil(Caption.parse("a red circle inside a blue square"))
        XCTAssertNil(Caption.parse("a red and blue circle"))
        XCTAssertNil(Caption.parse(""))
    }
}
