/// Layer normalisation over the last axis: `y = (x − mean)·rstd·w + b`, rstd = 1/√(var + eps), with the
/// biased variance (as PyTorch). Without affine parameters (weight and bias nil) it is FLUX's
/// `LayerNorm(elementwise_affine=False)`.
///
/// x, y `[rows, channels]`; weight, bias `[channels]`; saved mean, rstd `[rows]`.
public enum LayerNorm {
    /// Normalises each row. `y` may equal `x`. `mean` and `rstd` (`[rows]` each) receive what backward
    /// needs; pass nil for inference. `weight` and `bias` may each be nil (identity / zero).
    public static func forward(x: UnsafePointer<Float>, weight: UnsafePointer<Float>?, bias: UnsafePointer<Float>?,
                               y: UnsafeMutablePointer<Float>, mean: UnsafeMutablePointer<Float>?,
                               rstd: UnsafeMutablePointer<Float>?, rows: Int, channels: Int, eps: Float) {
        let c = channels
        Parallel.forEachChunk(rows, minChunk: max(1, 8192 / max(c, 1))) { range in
            for r in range {
                let xr = x + r * c, yr = y + r * c
                var s8 = F8(), i = 0
                while i + 8 <= c { s8 += load8(xr + i); i += 8 }
                var s = s8.sum()
                while i < c { s += xr[i]; i += 1 }
                let mu = s / Float(c)
                var v8 = F8(); i = 0
                while i + 8 <= c { let d = load8(xr + i) - mu; v8 += d * d; i += 8 }
                var v = v8.sum()
                while i < c { let d = xr[i] - mu; v += d * d; i += 1 }
                let rs = 1 / (v / Float(c) + eps).squareRoot()
                mean?[r] = mu
                rstd?[r] = rs
                i = 0
                while i + 8 <= c {
                    var o = (load8(xr + i) - mu) * rs
                    if let weight { o *= load8(weight + i) }
                    if let bias { o += load8(bias + i) }
                    store8(o, yr + i); i += 8
                }
                while i < c {
                    var o = (xr[i] - mu) * rs
                    if let weight { o *= weight[i] }
                    if let bias { o += bias[i] }
                    yr[i] = o; i += 1
                }
            }
        }
    }

    /// Accumulates dx, dWeight (Σ dy·x̂), dBias (Σ dy); any may be nil. `mean`/`rstd` are forward's.
    public static func backward(dy: UnsafePointer<Float>, x: UnsafePointer<Float>, weight: UnsafePointer<Float>?,
                                mean: UnsafePointer<Float>, rstd: UnsafePointer<Float>,
                                dx: UnsafeMutablePointer<Float>?, dWeight: UnsafeMutablePointer<Float>?,
                                dBias: UnsafeMutablePointer<Float>?, rows: Int, channels: Int) {
        let c = channels
        if let dx {
            Parallel.forEachChunk(rows, minChunk: max(1, 8192 / max(c, 1))) { range in
                for r in range {
                    let xr = x + r * c, gr = dy + r * c, dxr = dx + r * c
                    let mu = mean[r], rs = rstd[r]
                    // mean(g) and mean(g·x̂) with g = dy·w
                    var a8 = F8(), b8 = F8(), i = 0
                    while i + 8 <= c {
                        var g = load8(gr + i)
                        if let weight { g *= load8(weight + i) }
                        a8 += g; b8 += g * ((load8(xr + i) - mu) * rs); i += 8
                    }
                    var sa = a8.sum(), sb = b8.sum()
                    while i < c {
                        var g = gr[i]
                        if let weight { g *= weight[i] }
                        sa += g; sb += g * ((xr[i] - mu) * rs); i += 1
                    }
                    let ma = sa / Float(c), mb = sb / Float(c)
                    i = 0
                    while i + 8 <= c {
                        var g = load8(gr + i)
                        if let weight { g *= load8(weight + i) }
                        let xh = (load8(xr + i) - mu) * rs
                        store8(load8(dxr + i) + rs * (g - ma - xh * mb), dxr + i); i += 8
                    }
                    while i < c {
                        var g = gr[i]
                        if let weight { g *= weight[i] }
                        let xh = (xr[i] - mu) * rs
                        dxr[i] += rs * (g - ma - xh * mb); i += 1
                    }
                }
            }
        }
        if let dWeight {  // Σ_r dy·x̂
            reduceColumns(rows: rows, cols: c, into: dWeight, { r, i in
                load8(dy + r * c + i) * ((load8(x + r * c + i) - mean[r]) * rstd[r])
            }, { r, i in dy[r * c + i] * ((x[r * c + i] - mean[r]) * rstd[r]) })
        }
        if let dBias {  // Σ_r dy
            reduceColumns(rows: rows, cols: c, into: dBias, { r, i in load8(dy + r * c + i) }, { r, i in dy[r * c + i] })
        }
    }
}
