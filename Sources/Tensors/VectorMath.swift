import Foundation

// SIMD helpers shared by the elementwise kernels (internal).

typealias F8 = SIMD8<Float>

@inline(__always) func load8(_ p: UnsafePointer<Float>) -> F8 {
    UnsafeRawPointer(p).loadUnaligned(as: F8.self)
}

@inline(__always) func load8(_ p: UnsafeMutablePointer<Float>) -> F8 {
    UnsafeRawPointer(p).loadUnaligned(as: F8.self)
}

@inline(__always) func store8(_ v: F8, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: F8.self)
}

// The stdlib's pointwiseMin/Max, SIMD max() and squareRoot() on SIMD8<Float> are out-of-line calls
// (squareRoot even one sqrtf call per lane); these compile to inline compare-and-select.

/// Lane-wise maximum (NaN-agnostic).
@inline(__always) func vmax(_ a: F8, _ b: F8) -> F8 { a.replacing(with: b, where: a .< b) }

/// Lane-wise minimum (NaN-agnostic).
@inline(__always) func vmin(_ a: F8, _ b: F8) -> F8 { a.replacing(with: b, where: b .< a) }

/// The largest lane.
@inline(__always) func hmax(_ a: F8) -> Float {
    let b = vmax(a.lowHalf, a.highHalf)
    return Swift.max(Swift.max(b[0], b[1]), Swift.max(b[2], b[3]))
}

@inline(__always) func vmax(_ a: SIMD4<Float>, _ b: SIMD4<Float>) -> SIMD4<Float> { a.replacing(with: b, where: a .< b) }

/// e^x for eight lanes, within 2 ulp of expf (max relative error 1.2e-7) for x in [-87.3, 88.7];
/// exactly 0 below -87.3 and clamped to ~3.4e38 above 88.7. Cody–Waite reduction by ln 2 and the cephes
/// expf polynomial. Written with plain lane arithmetic and bit casts only: the generic SIMD `rounded`
/// and float→int conversions compile to per-lane library calls, far slower.
@_transparent func exp8(_ x: F8) -> F8 {
    let lo = F8(repeating: -87.33654), hi = F8(repeating: 88.72283)
    let xc = vmin(vmax(x, lo), hi)
    // Adding 1.5·2²³ rounds to the nearest integer and leaves it in the low mantissa bits.
    let t = xc * 1.442695040888963 + 12582912.0
    let n = t - 12582912.0
    var r = xc - n * 0.693359375
    r = r + n * 2.12194440e-4
    var p = F8(repeating: 1.9875691500e-4)
    p = p * r + 1.3981999507e-3
    p = p * r + 8.3334519073e-3
    p = p * r + 4.1665795894e-2
    p = p * r + 1.6666665459e-1
    p = p * r + 5.0000001201e-1
    p = p * (r * r) + r + 1
    // 2^n built in two halves so n = 128 (x near 88.7) does not overflow the exponent field.
    let ni = unsafeBitCast(t, to: SIMD8<Int32>.self) &- 0x4B40_0000
    let h1 = ni &>> 1, h2 = ni &- h1
    let s1 = unsafeBitCast((h1 &+ 127) &<< 23, to: F8.self)
    let s2 = unsafeBitCast((h2 &+ 127) &<< 23, to: F8.self)
    return (p * s1 * s2).replacing(with: 0, where: x .< lo)
}

/// tanh for eight lanes from exp8: absolute error below 1e-7.
@_transparent func tanh8(_ x: F8) -> F8 {
    1 - 2 / (exp8(x + x) + 1)
}

/// The logistic sigmoid for eight lanes.
@_transparent func sigmoid8(_ x: F8) -> F8 {
    1 / (1 + exp8(-x))
}


/// Loads the first `n` (< 8) floats at `p`; the other lanes are `fill`.
@inline(__always) func loadPartial(_ p: UnsafePointer<Float>, _ n: Int, fill: Float = 0) -> F8 {
    var v = F8(repeating: fill)
    for i in 0..<n { v[i] = p[i] }
    return v
}

/// Stores the first `n` (< 8) lanes of `v` at `p`.
@inline(__always) func storePartial(_ v: F8, _ p: UnsafeMutablePointer<Float>, _ n: Int) {
    for i in 0..<n { p[i] = v[i] }
}

/// dst[i] += src[i] for `count` floats.
@inline(__always) func addInPlace(_ dst: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>, _ count: Int) {
    var i = 0
    while i + 8 <= count { store8(load8(dst + i) + load8(src + i), dst + i); i += 8 }
    while i < count { dst[i] += src[i]; i += 1 }
}

/// Applies `f` to `count` elements of `x`, writing `y` (which may equal `x`), eight lanes at a time.
@_transparent func map8(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ count: Int,
                            _ f: (F8) -> F8) {
    var i = 0
    while i + 8 <= count { store8(f(load8(x + i)), y + i); i += 8 }
    if i < count { storePartial(f(loadPartial(x + i, count - i)), y + i, count - i) }
}

/// dx[i] += g(x[i], dy[i]) for `count` elements, eight lanes at a time.
@_transparent func accumulate8(_ x: UnsafePointer<Float>, _ dy: UnsafePointer<Float>,
                                   _ dx: UnsafeMutablePointer<Float>, _ count: Int, _ g: (F8, F8) -> F8) {
    var i = 0
    while i + 8 <= count { store8(load8(dx + i) + g(load8(x + i), load8(dy + i)), dx + i); i += 8 }
    if i < count {
        let n = count - i
        storePartial(loadPartial(dx + i, n) + g(loadPartial(x + i, n), loadPartial(dy + i, n)), dx + i, n)
    }
}

/// out[c] += Σ_{r < rows} term(r, c) for every column c in 0..<cols, accumulating in registers
/// (32 columns at a time) rather than through memory, split over threads by column blocks. `term(r, c)`
/// gives the eight lanes for columns c..<c+8, `scalarTerm(r, c)` one column (for the tail). The sum over
/// r runs in order for every column, so results do not depend on the thread count.
@inline(__always)
func reduceColumns(rows: Int, cols: Int, into out: UnsafeMutablePointer<Float>, minWork: Int = 32768,
                   _ term: (_ r: Int, _ c: Int) -> F8, _ scalarTerm: (_ r: Int, _ c: Int) -> Float) {
    let blocks = (cols + 31) / 32
    Parallel.forEachChunk(blocks, minChunk: max(1, minWork / max(rows * 32, 1))) { range in
        var c = range.lowerBound * 32
        let end = min(cols, range.upperBound * 32)
        while c + 32 <= end {
            var a0 = F8(), a1 = F8(), a2 = F8(), a3 = F8()
            for r in 0..<rows {
                a0 += term(r, c); a1 += term(r, c + 8); a2 += term(r, c + 16); a3 += term(r, c + 24)
            }
            store8(load8(out + c) + a0, out + c); store8(load8(out + c + 8) + a1, out + c + 8)
            store8(load8(out + c + 16) + a2, out + c + 16); store8(load8(out + c + 24) + a3, out + c + 24)
            c += 32
        }
        while c + 8 <= end {
            var a = F8()
            for r in 0..<rows { a += term(r, c) }
            store8(load8(out + c) + a, out + c)
            c += 8
        }
        while c < end {
            var s: Float = 0
            for r in 0..<rows { s += scalarTerm(r, c) }
            out[c] += s
            c += 1
        }
    }
}
