import XCTest
@testable import World

/// How far apart the world's shapes are as drawn: for a clean, centred render of each shape at each
/// nominal size, the verifier's least-squares fit of every other template, and the smallest excess
/// residual (Σ squared coverage difference, in pixels) over the true shape's. An excess of a pixel or
/// two is within what a generative model's ragged edge changes; such a pair cannot be told apart
/// reliably by any reader (the octagon, 1.5 px from a circle at 16 px, was replaced by the pentagon
/// for that reason).
final class ShapeDistinctnessTests: XCTestCase {
    static func margins(size: Size) -> [(shape: Shape, nearest: Shape, margin: Float)] {
        let side = Scene.canvas
        return Shape.allCases.map { shape in
            let extent = Scene.nominalExtent(size)
            var alpha = [Float](repeating: 0, count: side * side)
            ShapeTemplate.of(shape).coverage(centerX: Float(side) / 2 + 0.3, centerY: Float(side) / 2 - 0.2,
                                             extent: extent, width: side, height: side, into: &alpha)
            let fits = alpha.withUnsafeBufferPointer { a in
                ShapeFitter(alpha: a.baseAddress!, side: side)
                    .fitAll(box: ShapeFitter.Box(centerX: Float(side) / 2, centerY: Float(side) / 2, width: extent, height: extent))
            }
            let own = fits.first { $0.shape == shape }!.residual
            let other = fits.filter { $0.shape != shape }.min { $0.residual < $1.residual }!
            return (shape, other.shape, other.residual - own)
        }
    }

    /// The floor every pair must clear, in pixels of squared coverage.
    static let minimumMargin: Float = 5

    func testEveryShapeStandsApartAtEverySize() {
        for size in Size.allCases {
            let m = Self.margins(size: size)
            print("\(size.rawValue) (\(Scene.nominalExtent(size)) px): "
                  + m.map { "\($0.shape.rawValue)→\($0.nearest.rawValue) \(String(format: "%.2f", $0.margin))" }.joined(separator: ", "))
            for (shape, nearest, margin) in m {
                XCTAssertGreaterThan(margin, Self.minimumMargin, "\(shape) at \(size) is \(margin) px from \(nearest)")
            }
        }
    }
}
