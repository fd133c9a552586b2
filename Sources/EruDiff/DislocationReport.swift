/// Knowledge dislocation `D(c_i, c_e)` of a set of pairs (DESIGN §4.2): per pair (by id), the mean
/// per split, and the mean over all pairs.
public struct DislocationReport: Codable, Equatable, Sendable {
    public var perItem: [String: Double]
    public var bySplit: [String: Double]
    public var mean: Double
    /// Sampled (t, x_t) per pair.
    public var samplesPerPair: Int

    public init(perItem: [String: Double], splits: [String: String], samplesPerPair: Int) {
        self.perItem = perItem
        self.samplesPerPair = samplesPerPair
        // Sums in sorted id order, so equal inputs give bit-equal means.
        var sums: [String: (Double, Int)] = [:], total = 0.0
        for id in perItem.keys.sorted() {
            let d = perItem[id]!, s = splits[id] ?? "custom"
            sums[s, default: (0, 0)].0 += d
            sums[s, default: (0, 0)].1 += 1
            total += d
        }
        bySplit = sums.mapValues { $0.0 / Double($0.1) }
        mean = perItem.isEmpty ? 0 : total / Double(perItem.count)
    }
}
