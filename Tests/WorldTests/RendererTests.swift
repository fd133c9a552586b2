import Tensors
import XCTest
@testable import World

final class RendererTests: XCTestCase {
    func testSameSeedSameImageOtherSeedOtherImage() {
        let a = Attributes(shape: .star, color: .red)
        func draw(_ seed: UInt64) -> [Float] {
            var rng = RNG(seed: seed)
            var out = [Float](repeating: 0, count: Renderer.floatCount)
            out.withUnsafeMutableBufferPointer { _ = Renderer.render(a, rng: &rng, into: $0.baseAddress!) }
            return out
        }
        XCTAssertEqual(draw(7), draw(7))
        XCTAssertNotEqual(draw(7), draw(8))
    }

    func testScenesAgreeWithTheirAttributesAndStayOnCanvas() {
        var rng = RNG(seed: 1)
        for _ in 0..<2000 {
            let (_, said) = Caption.random(&rng)
            let s = Scene.sample(said, rng: &rng)
            if let v = said.shape { XCTAssertEqual(s.shape, v) }
            if let v = said.color { XCTAssertEqual(s.color, v) }
            if let v = said.background { XCTAssertEqual(s.background, v) }
            if let v = said.size { XCTAssertEqual(s.size, v) }
            if let v = said.position { XCTAssertEqual(s.position, v) }
            XCTAssertNotEqual(s.color, s.background)
            let t = ShapeTemplate.of(s.shape)
            XCTAssertGreaterThanOrEqual(s.centerX - t.width * s.extent / 2, 0)
            XCTAssertLessThanOrEqual(s.centerX + t.width * s.extent / 2, 32)
            XCTAssertGreaterThanOrEqual(s.centerY - t.height * s.extent / 2, 0)
            XCTAssertLessThanOrEqual(s.centerY + t.height * s.extent / 2, 32)
        }
    }

    func testCoverageIntegratesToShapeArea() {
        // The summed coverage of a shape well inside the canvas is its area in pixels.
        var cov = [Float](repeating: 0, count: 32 * 32)
        for t in ShapeTemplate.all {
            for e: Float in [12.6, 21, 23.1] {
                cov.withUnsafeMutableBufferPointer {
                    t.coverage(centerX: 16.3, centerY: 15.8, extent: e, width: 32, height: 32, into: $0.baseAddress!)
                }
                let sum = cov.reduce(0, +)
                XCTAssertEqual(sum, t.area * e * e, accuracy: 0.02 * e * e * t.area, "\(t.shape) at \(e)")
            }
        }
        // A circle's area is π r².
        XCTAssertEqual(ShapeTemplate.of(.circle).area, Float.pi / 4, accuracy: 0.002)
        XCTAssertEqual(ShapeTemplate.of(.square).area, 1, accuracy: 0.002)
    }

    func testWriteLookSeeGrid() throws {
        var rng = RNG(seed: 42)
        let columns: [(String, Attributes)] = [
            ("small center", Attributes(size: .small, position: .center)),
            ("large center", Attributes(size: .large, position: .center)),
            ("small left", Attributes(size: .small, position: .left)),
            ("large right", Attributes(size: .large, position: .right)),
            ("small top", Attributes(size: .small, position: .top)),
            ("large bottom", Attributes(size: .large, position: .bottom)),
        ]
        var rows: [[RGBImage]] = []
        for (i, shape) in Shape.allCases.enumerated() {
            rows.append(columns.enumerated().map { j, col in
                var a = col.1
                a.shape = shape
                a.color = PaletteColor.allCases[(i + j) % 12]
                a.background = PaletteColor.allCases[(i + 2 * j + 5) % 12]
                if a.background == a.color { a.background = nil }
                return Renderer.image(a, rng: &rng).image
            })
        }
        let grid = ImageGrid(rows: rows, rowLabels: Shape.allCases.map(\.rawValue),
                             columnLabels: columns.map(\.0), scale: 4)
        try grid.write(to: "/tmp/world-grid.png")
        let back = try PNG.read("/tmp/world-grid.png")
        XCTAssertEqual(back, try grid.render())
    }
}
