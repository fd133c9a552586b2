/// Mean squared error `L = (1/n)·Σ (pred − target)²` over `count` elements, the flow-matching loss.
public enum MSE {
    /// The loss (accumulated in double precision).
    public static func forward(pred: UnsafePointer<Float>, target: UnsafePointer<Float>, count: Int) -> Float {
        guard count > 0 else { return 0 }
        var total = 0.0, i = 0
        while i < count {
            // Float SIMD partial sums over blocks of ≤ 4096, summed in Double.
            let end = min(count, i + 4096)
            var s8 = F8()
            while i + 8 <= end { let d = load8(pred + i) - load8(target + i); s8 += d * d; i += 8 }
            var s = Double(s8.sum())
            while i < end { let d = Double(pred[i] - target[i]); s += d * d; i += 1 }
            total += s
        }
        return Float(total / Double(count))
    }

    /// dpred += scale·2·(pred − target)/count — the gradient of `scale·L` (scale weights terms of a
    /// composite loss).
    public static func backward(pred: UnsafePointer<Float>, target: UnsafePointer<Float>,
                                dpred: UnsafeMutablePointer<Float>, count: Int, scale: Float = 1) {
        guard count > 0 else { return }
        let k = 2 * scale / Float(count)
        Parallel.forEachChunk(count, minChunk: 32768) { range in
            let lo = range.lowerBound
            accumulate8(pred + lo, target + lo, dpred + lo, range.count) { p, t in k * (p - t) }
        }
    }
}
