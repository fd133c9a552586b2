import XCTest
@testable import World

final class PaletteTests: XCTestCase {
    /// sRGB → CIELAB (D65) against published reference values (Bruce Lindbloom's calculator,
    /// CIE 15): white, black, pure red, green, blue and mid gray.
    func testCIELABReferenceValues() {
        let cases: [(SIMD3<Float>, (Float, Float, Float))] = [
            (SIMD3(1, 1, 1), (100, 0, 0)),
            (SIMD3(0, 0, 0), (0, 0, 0)),
            (SIMD3(1, 0, 0), (53.24, 80.09, 67.20)),
            (SIMD3(0, 1, 0), (87.73, -86.18, 83.18)),
            (SIMD3(0, 0, 1), (32.30, 79.19, -107.86)),
            (SIMD3(0.5, 0.5, 0.5), (53.39, 0, 0)),
        ]
        for (rgb, want) in cases {
            let lab = CIELAB(srgb: rgb)
            XCTAssertEqual(lab.l, want.0, accuracy: 0.05, "\(rgb)")
            XCTAssertEqual(lab.a, want.1, accuracy: 0.1, "\(rgb)")
            XCTAssertEqual(lab.b, want.2, accuracy: 0.1, "\(rgb)")
        }
    }

    func testPaletteColoursAreFarApartAndNameThemselves() {
        var closest: (Float, String) = (.infinity, "")
        for a in PaletteColor.allCases {
            XCTAssertEqual(Palette.nearest(srgb: a.rgb).color, a)
            XCTAssertEqual(PaletteColor.allCases[a.index], a)
            for b in PaletteColor.allCases where a.index < b.index {
                let d = a.lab.distance(to: b.lab)
                if d < closest.0 { closest = (d, "\(a.rawValue)/\(b.rawValue)") }
                // Also apart in RGB, so segmentation under pixel noise works for every pair.
                let rgb = a.rgb - b.rgb
                XCTAssertGreaterThan((rgb * rgb).sum().squareRoot(), 0.35, "\(a) vs \(b)")
            }
        }
        print("closest palette pair: \(closest.1) ΔE \(closest.0)")
        XCTAssertGreaterThan(closest.0, 30)
    }
}
