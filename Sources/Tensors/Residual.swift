/// Residual addition `y = a + b` over `count` elements.
public enum Residual {
    /// y = a + b; `y` may equal `a` or `b`.
    public static func forward(a: UnsafePointer<Float>, b: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, count: Int) {
        Parallel.forEachChunk(count, minChunk: 32768) { range in
            let lo = range.lowerBound, n = range.count
            let pa = a + lo, pb = b + lo, py = y + lo
            var i = 0
            while i + 8 <= n { store8(load8(pa + i) + load8(pb + i), py + i); i += 8 }
            while i < n { py[i] = pa[i] + pb[i]; i += 1 }
        }
    }

    /// da += dy; db += dy (either may be nil).
    public static func backward(dy: UnsafePointer<Float>, da: UnsafeMutablePointer<Float>?, db: UnsafeMutablePointer<Float>?,
                                count: Int) {
        Parallel.forEachChunk(count, minChunk: 32768) { range in
            let lo = range.lowerBound, n = range.count
            if let da { addInPlace(da + lo, dy + lo, n) }
            if let db { addInPlace(db + lo, dy + lo, n) }
        }
    }
}
