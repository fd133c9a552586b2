import Foundation

/// A seedable random number generator whose streams are the same on every machine.
///
/// xoshiro256** seeded through SplitMix64; Gaussian draws by the Box–Muller transform computed in
/// double precision and rounded to float. Everything is sequential, so a stream never depends on the
/// thread count. Independent streams for the same seed (one per image of a batch, say) come from
/// `init(seed:stream:)`.
public struct RNG: RandomNumberGenerator, Sendable {
    private var s0: UInt64, s1: UInt64, s2: UInt64, s3: UInt64
    private var spare: Float? = nil

    /// The stream `stream` of generator `seed`.
    public init(seed: UInt64, stream: UInt64 = 0) {
        var sm = seed ^ (stream &* 0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03
        func next() -> UInt64 {
            sm &+= 0x9E37_79B9_7F4A_7C15
            var z = sm
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        s0 = next(); s1 = next(); s2 = next(); s3 = next()
    }

    /// The next 64 random bits.
    public mutating func next() -> UInt64 {
        let result = rotl(s1 &* 5, 7) &* 9
        let t = s1 << 17
        s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3
        s2 ^= t
        s3 = rotl(s3, 45)
        return result
    }

    @inline(__always) private func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }

    /// Uniform in [0, 1) with 53 random bits.
    public mutating func uniformDouble() -> Double { Double(next() >> 11) * 0x1.0p-53 }

    /// Uniform in [0, 1).
    public mutating func uniform() -> Float { Float(next() >> 40) * 0x1.0p-24 }

    /// Uniform integer in 0..<n.
    public mutating func int(below n: Int) -> Int {
        precondition(n > 0)
        return Int(next(upperBound: UInt64(n)))
    }

    /// A standard normal draw.
    public mutating func normal() -> Float {
        if let s = spare { spare = nil; return s }
        var u1 = uniformDouble()
        while u1 <= 0 { u1 = uniformDouble() }
        let u2 = uniformDouble()
        let r = (-2 * Foundation.log(u1)).squareRoot()
        let theta = 2 * Double.pi * u2
        spare = Float(r * Foundation.sin(theta))
        return Float(r * Foundation.cos(theta))
    }

    /// Fills `count` floats at `p` with standard normal draws.
    public mutating func fillNormal(_ p: UnsafeMutablePointer<Float>, count: Int, std: Float = 1) {
        for i in 0..<count { p[i] = normal() * std }
    }

    /// Fills `count` floats at `p` with uniform draws in [lo, hi).
    public mutating func fillUniform(_ p: UnsafeMutablePointer<Float>, count: Int, lo: Float, hi: Float) {
        for i in 0..<count { p[i] = lo + (hi - lo) * uniform() }
    }

    /// A random permutation of 0..<n (Fisher–Yates).
    public mutating func permutation(_ n: Int) -> [Int] {
        var a = Array(0..<n)
        if n > 1 { for i in stride(from: n - 1, to: 0, by: -1) { a.swapAt(i, int(below: i + 1)) } }
        return a
    }
}

extension Tensor {
    /// A tensor of standard-normal draws times `std`.
    public static func randn(_ shape: [Int], std: Float = 1, rng: inout RNG) -> Tensor {
        let t = Tensor(zeros: shape)
        rng.fillNormal(t.data, count: t.count, std: std)
        return t
    }

    /// A tensor of uniform draws in [lo, hi).
    public static func uniform(_ shape: [Int], lo: Float, hi: Float, rng: inout RNG) -> Tensor {
        let t = Tensor(zeros: shape)
        rng.fillUniform(t.data, count: t.count, lo: lo, hi: hi)
        return t
    }
}
