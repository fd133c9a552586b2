/// Token ids of several prompts, padded to a common length, with their attention mask.
///
/// Row-major `[count, length]`: row `b` holds `[CLS] … [SEP]` in its first `lengths[b]` positions
/// and the pad id (0) after them; `mask` is 1 on real tokens and 0 on padding.
public struct TokenBatch: Equatable, Sendable {
    /// Number of prompts (rows).
    public let count: Int
    /// Padded length of every row.
    public let length: Int
    /// Token ids, `count * length`.
    public let ids: [Int32]
    /// 1 for a real token, 0 for padding, `count * length`.
    public let mask: [Float]
    /// Number of real tokens of each row (including `[CLS]` and `[SEP]`).
    public let lengths: [Int]

    /// Pads `sequences` (each already `[CLS] … [SEP]`) with `padID` to `length`, or to the longest
    /// sequence when `length` is nil or shorter.
    public init(sequences: [[Int32]], length: Int? = nil, padID: Int32 = 0) {
        let longest = sequences.map(\.count).max() ?? 0
        let t = max(length ?? longest, longest)
        count = sequences.count
        self.length = t
        var ids = [Int32](repeating: padID, count: sequences.count * t)
        var mask = [Float](repeating: 0, count: sequences.count * t)
        for (b, seq) in sequences.enumerated() {
            for (i, id) in seq.enumerated() {
                ids[b * t + i] = id
                mask[b * t + i] = 1
            }
        }
        self.ids = ids
        self.mask = mask
        lengths = sequences.map(\.count)
    }

    /// The real (unpadded) ids of row `b`.
    public func sequence(_ b: Int) -> [Int32] { Array(ids[(b * length)..<(b * length + lengths[b])]) }
}
