/// Rotary position embedding applied to q or k, in FLUX/diffusers' convention
/// (`apply_rotary_emb(x, (cos, sin), use_real=True, use_real_unbind_dim=-1)`): within each head the
/// channels are taken as interleaved pairs (x[2i], x[2i+1]), and pair i of token t is rotated by the
/// angle θ[t, i]:
///
///     y[2i]   = x[2i]·cos θ − x[2i+1]·sin θ
///     y[2i+1] = x[2i+1]·cos θ + x[2i]·sin θ
///
/// Tables: `cos`, `sin` are `[T, Dh/2]` (entry [t, i] = cos/sin θ[t, i]; diffusers stores the same
/// values repeat-interleaved as `[T, Dh]`), shared by every batch element and head.
/// x, y `[B, T, H, Dh]`.
public enum Rotary {
    /// y = rotate(x, θ); `y` may equal `x`.
    public static func forward(x: UnsafePointer<Float>, cos: UnsafePointer<Float>, sin: UnsafePointer<Float>,
                               y: UnsafeMutablePointer<Float>, batch: Int, tokens: Int, heads: Int, headDim: Int) {
        rotate(x, cos, sin, y, batch: batch, tokens: tokens, heads: heads, headDim: headDim, sign: 1, accumulate: false)
    }

    /// dx += rotate(dy, −θ) (the transpose of the rotation).
    public static func backward(dy: UnsafePointer<Float>, cos: UnsafePointer<Float>, sin: UnsafePointer<Float>,
                                dx: UnsafeMutablePointer<Float>?, batch: Int, tokens: Int, heads: Int, headDim: Int) {
        guard let dx else { return }
        rotate(dy, cos, sin, dx, batch: batch, tokens: tokens, heads: heads, headDim: headDim, sign: -1, accumulate: true)
    }

    static func rotate(_ x: UnsafePointer<Float>, _ cos: UnsafePointer<Float>, _ sin: UnsafePointer<Float>,
                       _ y: UnsafeMutablePointer<Float>, batch: Int, tokens: Int, heads: Int, headDim: Int,
                       sign: Float, accumulate: Bool) {
        precondition(headDim % 2 == 0, "rotary embedding needs an even head dimension, got \(headDim)")
        let half = headDim / 2, rowLen = heads * headDim
        Parallel.forEachChunk(batch * tokens, minChunk: max(1, 16384 / max(rowLen, 1))) { range in
            for bt in range {
                let tok = bt % tokens
                let c = cos + tok * half, s = sin + tok * half
                for h in 0..<heads {
                    let xr = x + bt * rowLen + h * headDim, yr = y + bt * rowLen + h * headDim
                    var i = 0
                    // Four pairs (eight floats) at a time: lanes (even, odd) share one angle.
                    while i + 4 <= half {
                        let v = load8(xr + 2 * i)
                        let c8 = F8(c[i], c[i], c[i + 1], c[i + 1], c[i + 2], c[i + 2], c[i + 3], c[i + 3])
                        let s8 = F8(s[i], s[i], s[i + 1], s[i + 1], s[i + 2], s[i + 2], s[i + 3], s[i + 3]) * sign
                        // swapped = (−x_odd, x_even) per pair
                        let sw = F8(-v[1], v[0], -v[3], v[2], -v[5], v[4], -v[7], v[6])
                        var o = v * c8 + sw * s8
                        if accumulate { o += load8(yr + 2 * i) }
                        store8(o, yr + 2 * i)
                        i += 4
                    }
                    while i < half {
                        let a = xr[2 * i], b = xr[2 * i + 1], cs = c[i], sn = s[i] * sign
                        let o0 = a * cs - b * sn, o1 = b * cs + a * sn
                        if accumulate { yr[2 * i] += o0; yr[2 * i + 1] += o1 } else { yr[2 * i] = o0; yr[2 * i + 1] = o1 }
                        i += 1
                    }
                }
            }
        }
    }
}
