import Foundation

/// A colour in CIE L*a*b* (D65 white), the perceptual space in which the world names colours: equal
/// distances there look roughly equally different, which RGB distances do not.
public struct CIELAB: Hashable, Sendable {
    public var l: Float
    public var a: Float
    public var b: Float

    public init(l: Float, a: Float, b: Float) { self.l = l; self.a = a; self.b = b }

    /// The L*a*b* coordinates of an sRGB colour with components in [0, 1] (values outside are clamped).
    public init(srgb: SIMD3<Float>) {
        @inline(__always) func linear(_ c: Float) -> Float {
            let c = min(max(c, 0), 1)
            return c <= 0.04045 ? c / 12.92 : Float(pow(Double((c + 0.055) / 1.055), 2.4))
        }
        let r = linear(srgb.x), g = linear(srgb.y), bl = linear(srgb.z)
        // sRGB primaries to XYZ, normalised by the D65 white point.
        let x = (0.4124564 * r + 0.3575761 * g + 0.1804375 * bl) / 0.95047
        let y = 0.2126729 * r + 0.7151522 * g + 0.0721750 * bl
        let z = (0.0193339 * r + 0.1191920 * g + 0.9503041 * bl) / 1.08883
        @inline(__always) func f(_ t: Float) -> Float {
            let d: Float = 6.0 / 29.0
            return t > d * d * d ? Float(cbrt(Double(t))) : t / (3 * d * d) + 4.0 / 29.0
        }
        let fx = f(x), fy = f(y), fz = f(z)
        l = 116 * fy - 16
        a = 500 * (fx - fy)
        b = 200 * (fy - fz)
    }

    /// Euclidean distance (CIE76 ΔE).
    public func distance(to o: CIELAB) -> Float {
        let dl = l - o.l, da = a - o.a, db = b - o.b
        return (dl * dl + da * da + db * db).squareRoot()
    }
}
