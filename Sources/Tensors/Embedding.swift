/// Table lookup: row `ids[i]` of `table` `[vocabulary, dim]` becomes row i of `out` `[count, dim]`.
public enum Embedding {
    /// out[i] = table[ids[i]]. Every id must be in 0..<vocabulary (checked).
    public static func forward(ids: UnsafePointer<Int>, table: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>,
                               count: Int, vocabulary: Int, dim: Int) {
        for i in 0..<count {
            let id = ids[i]
            precondition(id >= 0 && id < vocabulary, "embedding id \(id) at position \(i) outside 0..<\(vocabulary)")
            (out + i * dim).update(from: table + id * dim, count: dim)
        }
    }

    /// dTable[ids[i]] += dout[i] (repeated ids add up).
    public static func backward(dout: UnsafePointer<Float>, ids: UnsafePointer<Int>, dTable: UnsafeMutablePointer<Float>?,
                                count: Int, vocabulary: Int, dim: Int) {
        guard let dTable else { return }
        for i in 0..<count {
            let id = ids[i]
            precondition(id >= 0 && id < vocabulary, "embedding id \(id) at position \(i) outside 0..<\(vocabulary)")
            addInPlace(dTable + id * dim, dout + i * dim, dim)
        }
    }
}
