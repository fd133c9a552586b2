import CKernels

/// Softmax over the last axis, with the row maximum subtracted first so large logits cannot overflow.
/// x, y `[rows, cols]`. A row whose entries are all −∞ gives all zeros (not NaN).
public enum Softmax {
    /// y = softmax(x) per row; `y` may equal `x`. `y` is also what backward needs.
    public static func forward(x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, rows: Int, cols: Int) {
        Parallel.forEachChunk(rows, minChunk: max(1, 4096 / max(cols, 1))) { range in
            for r in range { row(x + r * cols, y + r * cols, cols) }
        }
    }

    /// dx += y ⊙ (dy − Σ_j dy_j·y_j) per row; `y` is forward's output.
    public static func backward(dy: UnsafePointer<Float>, y: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>?,
                                rows: Int, cols: Int) {
        guard let dx else { return }
        Parallel.forEachChunk(rows, minChunk: max(1, 4096 / max(cols, 1))) { range in
            for r in range { rowBackward(dy + r * cols, y + r * cols, dx + r * cols, cols, scale: 1, accumulate: true) }
        }
    }

    /// Softmax of one row of `n` values (shared with attention).
    @inline(__always)
    static func row(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
        if erudiff_softmax_row(x, y, n) != 0 { return }  // AVX-512 or AVX2
        var m8 = F8(repeating: -.infinity), i = 0
        while i + 8 <= n { m8 = vmax(m8, load8(x + i)); i += 8 }
        var m = hmax(m8)
        while i < n { m = Swift.max(m, x[i]); i += 1 }
        if m == -.infinity { y.update(repeating: 0, count: n); return }
        var s8 = F8(); i = 0
        while i + 8 <= n { let e = exp8(load8(x + i) - m); store8(e, y + i); s8 += e; i += 8 }
        var s = s8.sum()
        if i < n {
            let e = exp8(loadPartial(x + i, n - i, fill: -.infinity) - m)
            storePartial(e, y + i, n - i); s += e.sum()
        }
        let inv = 1 / s
        i = 0
        while i + 8 <= n { store8(load8(y + i) * inv, y + i); i += 8 }
        while i < n { y[i] *= inv; i += 1 }
    }

    /// dx (+)= scale·y ⊙ (dy − Σ dy·y) for one row; `dx` may equal `dy` when not accumulating.
    @inline(__always)
    static func rowBackward(_ dy: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>,
                            _ n: Int, scale: Float, accumulate: Bool) {
        var d8 = F8(), i = 0
        while i + 8 <= n { d8 += load8(dy + i) * load8(y + i); i += 8 }
        var d = d8.sum()
        while i < n { d += dy[i] * y[i]; i += 1 }
        i = 0
        if accumulate {
            while i + 8 <= n { store8(load8(dx + i) + scale * load8(y + i) * (load8(dy + i) - d), dx + i); i += 8 }
            while i < n { dx[i] += scale * y[i] * (dy[i] - d); i += 1 }
        } else {
            while i + 8 <= n { store8(scale * load8(y + i) * (load8(dy + i) - d), dx + i); i += 8 }
            while i < n { dx[i] = scale * y[i] * (dy[i] - d); i += 1 }
        }
    }
}
