/// Root-mean-square normalisation over the last axis: `y = x·rstd·w`, rstd = 1/√(mean(x²) + eps).
/// FLUX applies it per head to q and k (rows = batch·tokens·heads, channels = head dim).
///
/// x, y `[rows, channels]`; weight `[channels]`; saved rstd `[rows]`.
public enum RMSNorm {
    /// Normalises each row. `y` may equal `x`. `rstd` (`[rows]`) receives what backward needs, or nil
    /// for inference. `weight` nil means all ones.
    public static func forward(x: UnsafePointer<Float>, weight: UnsafePointer<Float>?, y: UnsafeMutablePointer<Float>,
                               rstd: UnsafeMutablePointer<Float>?, rows: Int, channels: Int, eps: Float) {
        let c = channels
        Parallel.forEachChunk(rows, minChunk: max(1, 8192 / max(c, 1))) { range in
            for r in range {
                let xr = x + r * c, yr = y + r * c
                var s8 = F8(), i = 0
                while i + 8 <= c { let v = load8(xr + i); s8 += v * v; i += 8 }
                var s = s8.sum()
                while i < c { s += xr[i] * xr[i]; i += 1 }
                let rs = 1 / (s / Float(c) + eps).squareRoot()
                rstd?[r] = rs
                i = 0
                while i + 8 <= c {
                    var o = load8(xr + i) * rs
                    if let weight { o *= load8(weight + i) }
                    store8(o, yr + i); i += 8
                }
                while i < c {
                    var o = xr[i] * rs
                    if let weight { o *= weight[i] }
                    yr[i] = o; i += 1
                }
            }
        }
    }

    /// Accumulates dx and dWeight (Σ dy·x·rstd); either may be nil. `rstd` is forward's.
    public static func backward(dy: UnsafePointer<Float>, x: UnsafePointer<Float>, weight: UnsafePointer<Float>?,
                                rstd: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>?,
                                dWeight: UnsafeMutablePointer<Float>?, rows: Int, channels: Int) {
        let c = channels
        if let dx {
            Parallel.forEachChunk(rows, minChunk: max(1, 8192 / max(c, 1))) { range in
                for r in range {
                    let xr = x + r * c, gr = dy + r * c, dxr = dx + r * c, rs = rstd[r]
                    var b8 = F8(), i = 0
                    while i + 8 <= c {
                        var g = load8(gr + i)
                        if let weight { g *= load8(weight + i) }
                        b8 += g * load8(xr + i); i += 8
                    }
                    var sb = b8.sum()
                    while i < c {
                        var g = gr[i]
                        if let weight { g *= weight[i] }
                        sb += g * xr[i]; i += 1
                    }
                    // dx = rs·g − x·rs³·mean(g·x)
                    let k = rs * rs * rs * sb / Float(c)
                    i = 0
                    while i + 8 <= c {
                        var g = load8(gr + i)
                        if let weight { g *= load8(weight + i) }
                        store8(load8(dxr + i) + rs * g - k * load8(xr + i), dxr + i); i += 8
                    }
                    while i < c {
                        var g = gr[i]
                        if let weight { g *= weight[i] }
                        dxr[i] += rs * g - k * xr[i]; i += 1
                    }
                }
            }
        }
        if let dWeight {  // Σ_r dy·x·rstd
            reduceColumns(rows: rows, cols: c, into: dWeight, { r, i in
                load8(dy + r * c + i) * load8(x + r * c + i) * rstd[r]
            }, { r, i in dy[r * c + i] * x[r * c + i] * rstd[r] })
        }
    }
}
