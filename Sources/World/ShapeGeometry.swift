import Foundation

/// The exact outline of each shape, as an inside test in its own coordinates (y up), plus the box that
/// makes every shape fill the unit square [-1, 1]² with its longer side. The renderer never calls this
/// per pixel: `ShapeTemplate` turns it once into a coverage table.
struct ShapeGeometry {
    private enum Part {
        case circle(center: SIMD2<Double>, radius: Double)
        case polygon([SIMD2<Double>])
    }

    /// Parts whose union is the shape, and parts cut out of it.
    private let solid: [Part]
    private let holes: [Part]

    private init(solid: [Part], holes: [Part] = []) { self.solid = solid; self.holes = holes }

    /// Whether a point in the geometry's raw coordinates lies inside the shape.
    func contains(_ p: SIMD2<Double>) -> Bool {
        guard solid.contains(where: { Self.inside($0, p) }) else { return false }
        return !holes.contains(where: { Self.inside($0, p) })
    }

    private static func inside(_ part: Part, _ p: SIMD2<Double>) -> Bool {
        switch part {
        case let .circle(c, r):
            let d = p - c
            return d.x * d.x + d.y * d.y <= r * r
        case let .polygon(v):
            // Even-odd crossing test.
            var inside = false
            var j = v.count - 1
            for i in 0..<v.count {
                let a = v[i], b = v[j]
                if (a.y > p.y) != (b.y > p.y) {
                    let x = a.x + (p.y - a.y) * (b.x - a.x) / (b.y - a.y)
                    if p.x < x { inside.toggle() }
                }
                j = i
            }
            return inside
        }
    }

    /// Whether parts are cut out (then `looseBounds` may be larger than the shape).
    var hasHoles: Bool { !holes.isEmpty }

    /// A box that surely holds the shape (from its solid parts).
    var looseBounds: (min: SIMD2<Double>, max: SIMD2<Double>) {
        var lo = SIMD2<Double>(repeating: .infinity), hi = SIMD2<Double>(repeating: -.infinity)
        for part in solid {
            switch part {
            case let .circle(c, r):
                lo = pointwiseMin(lo, c - r); hi = pointwiseMax(hi, c + r)
            case let .polygon(v):
                for p in v { lo = pointwiseMin(lo, p); hi = pointwiseMax(hi, p) }
            }
        }
        return (lo, hi)
    }

    /// The outline of `shape`.
    static func of(_ shape: Shape) -> ShapeGeometry {
        switch shape {
        case .circle:
            return ShapeGeometry(solid: [.circle(center: .zero, radius: 1)])
        case .square:
            return ShapeGeometry(solid: [.polygon(box(1, 1))])
        case .rectangle:
            // Twice as wide as tall: never mistaken for a square.
            return ShapeGeometry(solid: [.polygon(box(1, 0.5))])
        case .triangle:
            // Equilateral, point up.
            return ShapeGeometry(solid: [.polygon([SIMD2(0, 3.0.squareRoot()), SIMD2(1, 0), SIMD2(-1, 0)])])
        case .star:
            // Five points up; a fat inner radius keeps the arms solid at small sizes.
            let v = (0..<10).map { k -> SIMD2<Double> in
                let r = k % 2 == 0 ? 1.0 : 0.45
                let a = Double.pi / 2 + Double(k) * Double.pi / 5
                return SIMD2(r * cos(a), r * sin(a))
            }
            return ShapeGeometry(solid: [.polygon(v)])
        case .heart:
            // The classic parametric heart curve.
            let v = (0..<160).map { k -> SIMD2<Double> in
                let t = Double(k) / 160 * 2 * Double.pi
                let s = sin(t)
                return SIMD2(16 * s * s * s, 13 * cos(t) - 5 * cos(2 * t) - 2 * cos(3 * t) - cos(4 * t))
            }
            return ShapeGeometry(solid: [.polygon(v)])
        case .pentagon:
            // Regular, point up (a school-zone sign). Five corners stand far enough from a circle of the
            // same box to be read at the small size, where an octagon's eight did not (see
            // ShapeDistinctnessTests).
            let v = (0..<5).map { k -> SIMD2<Double> in
                let a = Double.pi / 2 + Double(k) * 2 * Double.pi / 5
                return SIMD2(cos(a), sin(a))
            }
            return ShapeGeometry(solid: [.polygon(v)])
        case .diamond:
            // A rhombus a little taller than wide, like the card suit.
            return ShapeGeometry(solid: [.polygon([SIMD2(0, 1), SIMD2(0.8, 0), SIMD2(0, -1), SIMD2(-0.8, 0)])])
        case .crescent:
            // A disc with an offset disc cut out: a moon opening to the upper right.
            return ShapeGeometry(solid: [.circle(center: .zero, radius: 1)],
                                 holes: [.circle(center: SIMD2(0.42, 0.22), radius: 0.82)])
        case .ring:
            return ShapeGeometry(solid: [.circle(center: .zero, radius: 1)],
                                 holes: [.circle(center: .zero, radius: 0.52)])
        case .cross:
            // A plus sign (Greek cross) with arms a third of its width.
            let w = 0.34
            return ShapeGeometry(solid: [.polygon(box(1, w)), .polygon(box(w, 1))])
        case .drop:
            // A teardrop, point up (a flame, a drop of water): a disc and its two tangents to the tip.
            let c = SIMD2<Double>(0, -0.3), r = 0.7, tip = SIMD2<Double>(0, 1)
            let phi = Double.pi / 2 - asin(r / (tip.y - c.y))   // angle from +y of the tangent points
            var v = [tip]
            let n = 96
            for k in 0...n {
                let t = phi + (2 * Double.pi - 2 * phi) * Double(k) / Double(n)
                v.append(c + r * SIMD2(sin(t), cos(t)))
            }
            return ShapeGeometry(solid: [.polygon(v)])
        }
    }

    private static func box(_ hx: Double, _ hy: Double) -> [SIMD2<Double>] {
        [SIMD2(-hx, -hy), SIMD2(hx, -hy), SIMD2(hx, hy), SIMD2(-hx, hy)]
    }
}
