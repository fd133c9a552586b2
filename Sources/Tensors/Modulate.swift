/// adaLN modulation `y = x·(1 + scale) + shift`, with x `[B, T, C]` and scale, shift one row of C per
/// batch element, broadcast over the T tokens.
///
/// scale and shift are usually chunks of one `[B, k·C]` projection (FLUX's AdaLayerNormZero): row b of
/// scale starts at `scale + b·modStride` (likewise shift, and the gradients dScale, dShift).
public enum Modulate {
    /// y = x·(1 + scale[b]) + shift[b]; `y` may equal `x`.
    public static func forward(x: UnsafePointer<Float>, scale: UnsafePointer<Float>, shift: UnsafePointer<Float>,
                               y: UnsafeMutablePointer<Float>, batch: Int, tokens: Int, channels: Int, modStride: Int) {
        let c = channels
        Parallel.forEachChunk(batch * tokens, minChunk: max(1, 16384 / max(c, 1))) { range in
            for bt in range {
                let b = bt / tokens
                let sc = scale + b * modStride, sh = shift + b * modStride
                let xr = x + bt * c, yr = y + bt * c
                var i = 0
                while i + 8 <= c { store8(load8(xr + i) * (1 + load8(sc + i)) + load8(sh + i), yr + i); i += 8 }
                while i < c { yr[i] = xr[i] * (1 + sc[i]) + sh[i]; i += 1 }
            }
        }
    }

    /// dx += dy·(1 + scale[b]); dScale[b] += Σ_t dy·x; dShift[b] += Σ_t dy. Any may be nil.
    public static func backward(dy: UnsafePointer<Float>, x: UnsafePointer<Float>, scale: UnsafePointer<Float>,
                                dx: UnsafeMutablePointer<Float>?, dScale: UnsafeMutablePointer<Float>?,
                                dShift: UnsafeMutablePointer<Float>?,
                                batch: Int, tokens: Int, channels: Int, modStride: Int) {
        let c = channels
        if let dx {
            Parallel.forEachChunk(batch * tokens, minChunk: max(1, 16384 / max(c, 1))) { range in
                for bt in range {
                    accumulate8(scale + (bt / tokens) * modStride, dy + bt * c, dx + bt * c, c) { s, g in g * (1 + s) }
                }
            }
        }
        guard dScale != nil || dShift != nil else { return }
        // One batch element per task: its dScale/dShift rows belong to it alone.
        Parallel.forEachChunk(batch, minChunk: max(1, 16384 / max(tokens * c, 1))) { range in
            for b in range {
                let xb = x + b * tokens * c, gb = dy + b * tokens * c
                if let dScale {
                    reduceColumns(rows: tokens, cols: c, into: dScale + b * modStride, minWork: .max,
                                  { t, i in load8(gb + t * c + i) * load8(xb + t * c + i) },
                                  { t, i in gb[t * c + i] * xb[t * c + i] })
                }
                if let dShift {
                    reduceColumns(rows: tokens, cols: c, into: dShift + b * modStride, minWork: .max,
                                  { t, i in load8(gb + t * c + i) }, { t, i in gb[t * c + i] })
                }
            }
        }
    }
}
