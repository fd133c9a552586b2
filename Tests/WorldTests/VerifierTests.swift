import Foundation
import Tensors
import XCTest
@testable import World

final class VerifierTests: XCTestCase {
    /// Every shape in every colour on every other colour, at a random size and position, is drawn and
    /// read back right, from the float image and from its 8-bit PNG form.
    func testEveryShapeColourAndBackgroundIsReadBack() throws {
        let verifier = Verifier()
        var rng = RNG(seed: 17)
        var wrong: [String] = []
        var count = 0
        for shape in Shape.allCases {
            for color in PaletteColor.allCases {
                for background in PaletteColor.allCases where background != color {
                    let scene = Scene.sample(Attributes(shape: shape, color: color, background: background), rng: &rng)
                    let image = Renderer.image(scene)
                    let v = try verifier.verify(image)
                    count += 1
                    if v.attributes != scene.attributes || !v.foundObject {
                        wrong.append("\(scene.attributes) read as \(v.attributes)")
                    }
                }
            }
        }
        XCTAssertEqual(count, 12 * 12 * 11)
        XCTAssertEqual(wrong, [])
    }

    func testFloatAndByteInputsAgree() throws {
        var rng = RNG(seed: 23)
        var buf = [Float](repeating: 0, count: Renderer.floatCount)
        for _ in 0..<50 {
            let scene = buf.withUnsafeMutableBufferPointer {
                Renderer.render(Caption.random(&rng).attributes, rng: &rng, into: $0.baseAddress!)
            }
            let fromFloat = try buf.withUnsafeBufferPointer { try Verifier().verify(signedUnit: $0.baseAddress!) }
            let unit = buf.map { ($0 + 1) / 2 }
            let fromUnit = try unit.withUnsafeBufferPointer { try Verifier().verify(unit: $0.baseAddress!) }
            let fromBytes = try buf.withUnsafeBufferPointer {
                try Verifier().verify(RGBImage(signedUnit: $0.baseAddress!, width: 32, height: 32))
            }
            XCTAssertEqual(fromFloat.attributes, scene.attributes)
            XCTAssertEqual(fromUnit.attributes, scene.attributes)
            XCTAssertEqual(fromBytes.attributes, scene.attributes)
            XCTAssertGreaterThan(fromFloat.confidence, 0.9)
        }
    }

    /// A blank image, pure noise, and a faint smudge are not objects; the background is still named.
    func testNoClearObject() throws {
        let verifier = Verifier()
        let blank = RGBImage(width: 32, height: 32, fill: SIMD3(255, 255, 255))
        let v = try verifier.verify(blank)
        XCTAssertFalse(v.foundObject)
        XCTAssertEqual(v.attributes, Attributes(background: .white))

        var rng = RNG(seed: 4)
        var noise = [Float](repeating: 0, count: Renderer.floatCount)
        for i in 0..<noise.count { noise[i] = -0.8 + 0.2 * rng.normal() }   // noisy near-black
        let vn = try noise.withUnsafeBufferPointer { try verifier.verify(signedUnit: $0.baseAddress!) }
        XCTAssertFalse(vn.foundObject)
        XCTAssertEqual(vn.attributes, Attributes(background: .black))

        // A faint smudge: a disc barely darker than a gray background.
        var smudge = [Float](repeating: 0.04, count: Renderer.floatCount)
        for y in 12..<20 { for x in 12..<20 { for c in 0..<3 { smudge[(y * 32 + x) * 3 + c] = 0.0 } } }
        let vs = try smudge.withUnsafeBufferPointer { try verifier.verify(signedUnit: $0.baseAddress!) }
        XCTAssertFalse(vs.foundObject)

        // A scatter of unrelated speckles is not one shape either.
        var speckles = [Float](repeating: 1, count: Renderer.floatCount)
        for _ in 0..<150 {
            let i = rng.int(below: 32 * 32)
            for c in 0..<3 { speckles[i * 3 + c] = -1 }
        }
        let vk = try speckles.withUnsafeBufferPointer { try verifier.verify(signedUnit: $0.baseAddress!) }
        XCTAssertFalse(vk.foundObject, "\(vk)")
    }

    /// Every shape's template is graded against the object: the drawn shape's fit is the confidence
    /// and the highest, the others lie in [0, 1] below it, and a shape's near neighbours fit better
    /// than shapes unlike it (a pentagon is nearer a circle than a cross or a star is). No object: no
    /// grades.
    func testShapeFitGradesEveryTemplate() throws {
        let verifier = Verifier()
        var rng = RNG(seed: 31)
        for shape in Shape.allCases {
            let (_, image) = Renderer.image(Attributes(shape: shape, color: .red, background: .white, size: .large), rng: &rng)
            let v = try verifier.verify(image)
            XCTAssertEqual(v.attributes.shape, shape)
            XCTAssertEqual(Set(v.shapeFit.keys), Set(Shape.allCases))
            XCTAssertEqual(v.shapeFit[shape], v.confidence)
            for (other, fit) in v.shapeFit where other != shape {
                XCTAssertTrue(fit >= 0 && fit < v.confidence, "\(shape): \(other) fits \(fit), confidence \(v.confidence)")
            }
        }
        let (_, circle) = Renderer.image(Attributes(shape: .circle, color: .blue, background: .yellow, size: .large), rng: &rng)
        let fits = try verifier.verify(circle).shapeFit
        XCTAssertGreaterThan(fits[.pentagon]!, fits[.cross]!)
        XCTAssertGreaterThan(fits[.pentagon]!, fits[.star]!)
        XCTAssertEqual(try verifier.verify(RGBImage(width: 32, height: 32, fill: SIMD3(255, 255, 255))).shapeFit, [:])
    }

    func testWrongSizeThrows() {
        XCTAssertThrowsError(try Verifier().verify(RGBImage(width: 16, height: 16))) { error in
            XCTAssertEqual(error as? WorldError, .unsupportedSize(width: 16, height: 16))
        }
    }

    /// Speed of the renderer (per image) against the verifier, measured side by side.
    func testRendererIsFastAndVerifierIsUsable() throws {
        _ = ShapeTemplate.all
        var rng = RNG(seed: 8)
        var buf = [Float](repeating: 0, count: Renderer.floatCount)
        let scenes = (0..<2000).map { _ in Scene.sample(Caption.random(&rng).attributes, rng: &rng) }
        let t0 = Date()
        var checksum: Float = 0
        for s in scenes {
            buf.withUnsafeMutableBufferPointer { Renderer.render(s, into: $0.baseAddress!) }
            checksum += buf[512]
        }
        let render = Date().timeIntervalSince(t0) / Double(scenes.count)
        let t1 = Date()
        var right = 0
        for s in scenes.prefix(200) {
            buf.withUnsafeMutableBufferPointer { Renderer.render(s, into: $0.baseAddress!) }
            let v = try buf.withUnsafeBufferPointer { try Verifier().verify(signedUnit: $0.baseAddress!) }
            if v.attributes == s.attributes { right += 1 }
        }
        let verify = Date().timeIntervalSince(t1) / 200
        print(String(format: "render %.1f µs/image, verify %.2f ms/image (ratio %.0f×), checksum %.1f",
                     render * 1e6, verify * 1e3, verify / render, checksum))
        XCTAssertEqual(right, 200)
        XCTAssertLessThan(render, verify / 20)
    }
}

/// Outline fidelity and cleanliness: what the verifier reports beside the attributes.
final class VerifierOutlineTests: XCTestCase {
    /// A clean render of every shape at both sizes has an outline IoU near 1 and no unexplained pixel.
    func testCleanRendersAreFaithfulAndExplained() throws {
        let verifier = Verifier()
        var rng = RNG(seed: 41)
        for shape in Shape.allCases {
            for size in Size.allCases {
                let (_, image) = Renderer.image(Attributes(shape: shape, color: .green, background: .pink, size: size), rng: &rng)
                let v = try verifier.verify(image)
                XCTAssertGreaterThan(try XCTUnwrap(v.outlineIoU), 0.95, "\(shape) \(size)")
                XCTAssertEqual(v.unexplained, 0, "\(shape) \(size)")
                XCTAssertEqual(v.stray, 0, "\(shape) \(size)")
                XCTAssertTrue(v.isClean)
            }
        }
        let flat = try verifier.verify(RGBImage(width: 32, height: 32, fill: SIMD3(255, 255, 255)))
        XCTAssertNil(flat.outlineIoU)
        XCTAssertEqual(flat.unexplained, 0)
        XCTAssertTrue(flat.isClean, "a flat field is clean: nothing drawn, nothing left over")
    }

    /// Specks on a flat field, a second object beside the first, and a ragged outline: each leaves
    /// pixels unexplained or lowers the outline IoU, where the clean image does neither.
    func testSmearsSpecksAndRaggedOutlinesShow() throws {
        let verifier = Verifier()
        var rng = RNG(seed: 42)
        var specks = RGBImage(width: 32, height: 32, fill: SIMD3(255, 255, 255))
        for _ in 0..<40 { let i = rng.int(below: 32 * 32); specks.pixels[3 * i] = 0; specks.pixels[3 * i + 2] = 0 }
        let vs = try verifier.verify(specks)
        XCTAssertGreaterThan(vs.unexplained, 0.03)
        XCTAssertGreaterThan(vs.stray, 0.03)
        XCTAssertFalse(vs.isClean)

        let scene = Scene(shape: .square, color: .blue, background: .white, size: .small, position: .left,
                          centerX: 9, centerY: 16, extent: 10)
        var two = Renderer.image(scene)
        let other = Renderer.image(Scene(shape: .circle, color: .blue, background: .white, size: .small, position: .right,
                                         centerX: 25, centerY: 16, extent: 8))
        for i in 0..<(32 * 32) where other.pixels[3 * i] != 255 { for c in 0..<3 { two.pixels[3 * i + c] = other.pixels[3 * i + c] } }
        let vt = try verifier.verify(two)
        XCTAssertGreaterThan(vt.unexplained, 0.03)
        XCTAssertGreaterThan(vt.stray, Verification.cleanStrayLimit, "the second object lies away from the first's outline")
        XCTAssertFalse(vt.isClean)

        let clean = Renderer.image(Scene(shape: .circle, color: .red, background: .white, size: .large, position: .center,
                                         centerX: 16, centerY: 16, extent: 22))
        var ragged = clean
        for y in 0..<32 {
            for x in 0..<32 where (x + y) % 3 == 0 {  // bite a pixel out of the edge every third step
                let i = y * 32 + x, dx = Float(x) + 0.5 - 16, dy = Float(y) + 0.5 - 16
                if abs((dx * dx + dy * dy).squareRoot() - 10.5) < 1 { for c in 0..<3 { ragged.pixels[3 * i + c] = 255 } }
            }
        }
        let a = try XCTUnwrap(try verifier.verify(clean).outlineIoU), b = try XCTUnwrap(try verifier.verify(ragged).outlineIoU)
        XCTAssertGreaterThan(a, 0.97)
        XCTAssertLessThan(b, a - 0.03)
        // A ragged edge is unfaithful but not stray: the image is still one object on a flat field.
        let vr = try verifier.verify(ragged)
        XCTAssertGreaterThan(vr.unexplained, 0)
        XCTAssertEqual(vr.stray, 0)
        XCTAssertTrue(vr.isClean)
    }
}
