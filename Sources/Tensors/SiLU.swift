/// The sigmoid linear unit x·σ(x), elementwise (FLUX applies it before its adaLN projections).
public enum SiLU {
    /// y = x·σ(x) for `count` elements; `y` may equal `x`.
    public static func forward(x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, count: Int) {
        Parallel.forEachChunk(count, minChunk: 16384) { range in
            map8(x + range.lowerBound, y + range.lowerBound, range.count) { v in v * sigmoid8(v) }
        }
    }

    /// dx += dy·σ(x)·(1 + x·(1 − σ(x))); `x` is forward's input.
    public static func backward(dy: UnsafePointer<Float>, x: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>?,
                                count: Int) {
        guard let dx else { return }
        Parallel.forEachChunk(count, minChunk: 16384) { range in
            let lo = range.lowerBound
            accumulate8(x + lo, dy + lo, dx + lo, range.count) { v, g in
                let s = sigmoid8(v)
                return g * s * (1 + v * (1 - s))
            }
        }
    }
}
