/// FLUX's gated residual `y = x + gate·h`, with x, h `[B, T, C]` and gate one row of C per batch
/// element (a chunk of the adaLN projection, row b at `gate + b·gateStride`), broadcast over tokens.
public enum GatedResidual {
    /// y = x + gate[b]·h; `y` may equal `x` (the usual in-place residual update).
    public static func forward(x: UnsafePointer<Float>, gate: UnsafePointer<Float>, h: UnsafePointer<Float>,
                               y: UnsafeMutablePointer<Float>, batch: Int, tokens: Int, channels: Int, gateStride: Int) {
        let c = channels
        Parallel.forEachChunk(batch * tokens, minChunk: max(1, 16384 / max(c, 1))) { range in
            for bt in range {
                let g = gate + (bt / tokens) * gateStride
                let xr = x + bt * c, hr = h + bt * c, yr = y + bt * c
                var i = 0
                while i + 8 <= c { store8(load8(xr + i) + load8(g + i) * load8(hr + i), yr + i); i += 8 }
                while i < c { yr[i] = xr[i] + g[i] * hr[i]; i += 1 }
            }
        }
    }

    /// dx += dy; dh += gate[b]·dy; dGate[b] += Σ_t dy·h. Any may be nil.
    public static func backward(dy: UnsafePointer<Float>, h: UnsafePointer<Float>, gate: UnsafePointer<Float>,
                                dx: UnsafeMutablePointer<Float>?, dh: UnsafeMutablePointer<Float>?,
                                dGate: UnsafeMutablePointer<Float>?,
                                batch: Int, tokens: Int, channels: Int, gateStride: Int) {
        let c = channels
        if dx != nil || dh != nil {
            Parallel.forEachChunk(batch * tokens, minChunk: max(1, 16384 / max(c, 1))) { range in
                for bt in range {
                    let gr = dy + bt * c
                    if let dx { addInPlace(dx + bt * c, gr, c) }
                    if let dh { accumulate8(gate + (bt / tokens) * gateStride, gr, dh + bt * c, c) { gv, d in gv * d } }
                }
            }
        }
        guard let dGate else { return }
        Parallel.forEachChunk(batch, minChunk: max(1, 16384 / max(tokens * c, 1))) { range in
            for b in range {
                let hb = h + b * tokens * c, gb = dy + b * tokens * c
                reduceColumns(rows: tokens, cols: c, into: dGate + b * gateStride, minWork: .max,
                              { t, i in load8(gb + t * c + i) * load8(hb + t * c + i) },
                              { t, i in gb[t * c + i] * hb[t * c + i] })
            }
        }
    }
}
