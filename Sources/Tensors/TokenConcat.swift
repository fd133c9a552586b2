/// Concatenation along the token axis, `[B, T1, C]` + `[B, T2, C]` → `[B, T1+T2, C]` (FLUX joins text
/// tokens, then image tokens, for joint attention), and its inverse `TokenSplit`.
public enum TokenConcat {
    /// y[b] = (a[b]; b[b]) — a's tokens first.
    public static func forward(a: UnsafePointer<Float>, b: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>,
                               batch: Int, tokensA: Int, tokensB: Int, channels: Int) {
        let na = tokensA * channels, nb = tokensB * channels
        for i in 0..<batch {
            (y + i * (na + nb)).update(from: a + i * na, count: na)
            (y + i * (na + nb) + na).update(from: b + i * nb, count: nb)
        }
    }

    /// da += first tokensA tokens of dy; db += the rest (either may be nil).
    public static func backward(dy: UnsafePointer<Float>, da: UnsafeMutablePointer<Float>?, db: UnsafeMutablePointer<Float>?,
                                batch: Int, tokensA: Int, tokensB: Int, channels: Int) {
        let na = tokensA * channels, nb = tokensB * channels
        for i in 0..<batch {
            if let da { addInPlace(da + i * na, dy + i * (na + nb), na) }
            if let db { addInPlace(db + i * nb, dy + i * (na + nb) + na, nb) }
        }
    }
}

/// Split along the token axis, `[B, T1+T2, C]` → `[B, T1, C]` + `[B, T2, C]` (the inverse of
/// `TokenConcat`).
public enum TokenSplit {
    /// a[b] = first tokensA tokens of x[b]; b[b] = the remaining tokensB. Either output may be nil.
    public static func forward(x: UnsafePointer<Float>, a: UnsafeMutablePointer<Float>?, b: UnsafeMutablePointer<Float>?,
                               batch: Int, tokensA: Int, tokensB: Int, channels: Int) {
        let na = tokensA * channels, nb = tokensB * channels
        for i in 0..<batch {
            a.map { ($0 + i * na).update(from: x + i * (na + nb), count: na) }
            b.map { ($0 + i * nb).update(from: x + i * (na + nb) + na, count: nb) }
        }
    }

    /// dx += (da; db) per batch element; a nil da or db counts as zero.
    public static func backward(da: UnsafePointer<Float>?, db: UnsafePointer<Float>?, dx: UnsafeMutablePointer<Float>?,
                                batch: Int, tokensA: Int, tokensB: Int, channels: Int) {
        guard let dx else { return }
        let na = tokensA * channels, nb = tokensB * channels
        for i in 0..<batch {
            if let da { addInPlace(dx + i * (na + nb), da + i * na, na) }
            if let db { addInPlace(dx + i * (na + nb) + na, db + i * nb, nb) }
        }
    }
}
