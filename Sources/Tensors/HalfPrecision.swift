/// Widening of 16-bit floats (IEEE half `F16`, bfloat16 `BF16`) to float32, exactly.
///
/// Both are exact: every half and every bfloat16 value is a float32 value. NaN payloads are kept (the
/// mantissa bits move up unchanged, as numpy does), so a signalling NaN stays signalling. Sources may be
/// unaligned (a file can place a 2-byte tensor at an odd offset); eight elements go per SIMD step.
public enum HalfPrecision {
    /// Writes `count` float32 values to `dst` from `count` little-endian IEEE halves at `src`.
    public static func f16ToF32(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, count: Int) {
        let out = UnsafeMutableRawPointer(dst)
        var i = 0
        while i + 8 <= count {
            let h = src.loadUnaligned(fromByteOffset: 2 * i, as: SIMD8<UInt16>.self)
            out.storeBytes(of: widenF16(h), toByteOffset: 4 * i, as: SIMD8<UInt32>.self)
            i += 8
        }
        if i < count {
            var h = SIMD8<UInt16>()
            for j in 0..<(count - i) { h[j] = src.loadUnaligned(fromByteOffset: 2 * (i + j), as: UInt16.self) }
            let w = widenF16(h)
            for j in 0..<(count - i) { out.storeBytes(of: w[j], toByteOffset: 4 * (i + j), as: UInt32.self) }
        }
    }

    /// Writes `count` float32 values to `dst` from `count` little-endian bfloat16 values at `src`.
    public static func bf16ToF32(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, count: Int) {
        let out = UnsafeMutableRawPointer(dst)
        var i = 0
        while i + 8 <= count {
            let h = src.loadUnaligned(fromByteOffset: 2 * i, as: SIMD8<UInt16>.self)
            out.storeBytes(of: SIMD8<UInt32>(truncatingIfNeeded: h) &<< 16, toByteOffset: 4 * i, as: SIMD8<UInt32>.self)
            i += 8
        }
        while i < count {
            let h = src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)
            out.storeBytes(of: UInt32(h) << 16, toByteOffset: 4 * i, as: UInt32.self)
            i += 1
        }
    }

    /// Float32 bit patterns of eight half bit patterns.
    ///
    /// The half's exponent and mantissa, placed in a float32's low bits, are a float32 2^112 times too
    /// small; multiplying by 2^112 is exact for normals and subnormals alike (this relies on the default
    /// floating-point mode: no denormals-are-zero). Infinities and NaNs (exponent 31) then get the
    /// all-ones exponent, flagged without branches or masks by the carry of exponent + 1 into bit 15.
    @inline(__always)
    static func widenF16(_ h: SIMD8<UInt16>) -> SIMD8<UInt32> {
        let h32 = SIMD8<UInt32>(truncatingIfNeeded: h)
        let magnitude = unsafeBitCast((h32 & 0x7FFF) &<< 13, to: SIMD8<Float>.self) * SIMD8<Float>(repeating: 0x1p112)
        let infOrNaN = 0 &- (((h32 & 0x7C00) &+ 0x0400) &>> 15)
        return unsafeBitCast(magnitude, to: SIMD8<UInt32>.self) | (infOrNaN & 0x7F80_0000) | ((h32 & 0x8000) &<< 16)
    }
}
