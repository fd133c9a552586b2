/// NO-RL's group arithmetic (DESIGN §4.3 step 2):
///
///     A_j = clip((r_j − mean r) / (std r + 1e-4), −A_max, A_max),   A_j ← min(A_j, 0),
///     ρ_j = clamp(0.5 + A_j / (2·A_max), 0, 1)
///
/// with the population standard deviation of the group. A group whose rewards are all equal carries
/// no signal: `advantages` returns nil for it and it is skipped.
public enum NegativeAdvantage {
    /// The negative-only advantages of one group, nil when every reward is the same (or the group has
    /// fewer than two samples).
    public static func advantages(_ rewards: [Double], clip aMax: Double) -> [Double]? {
        guard rewards.count >= 2, let lo = rewards.min(), let hi = rewards.max(), hi > lo else { return nil }
        let n = Double(rewards.count)
        let mean = rewards.reduce(0, +) / n
        let std = (rewards.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / n).squareRoot()
        return rewards.map { r in min(min(max((r - mean) / (std + 1e-4), -aMax), aMax), 0) }
    }

    /// The optimality weight ρ of an advantage: below 0.5 for below-average samples, 0.5 otherwise.
    public static func optimality(_ advantage: Double, clip aMax: Double) -> Double {
        min(max(0.5 + advantage / (2 * aMax), 0), 1)
    }

    /// Mean and population standard deviation.
    static func meanStd(_ v: [Double]) -> (Double, Double) {
        guard !v.isEmpty else { return (0, 0) }
        let m = v.reduce(0, +) / Double(v.count)
        return (m, (v.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(v.count)).squareRoot())
    }
}
