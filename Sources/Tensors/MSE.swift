/// The loss arithmetic every training procedure shares (flow matching, DK-DM, NO-RL): a weighted sum
/// of mean squared differences over the rows of a stacked batch, and its gradient,
///
///     L = Σ_g W_g/(n_g·width) · Σ_{r ∈ g} Σ_i Σ_k w_kr·(p_kri − q_kri)²
///     ∂L/∂x_ri = 2·W_g/(n_g·width) · Σ_k w_kr·s_k·(p_kri − q_kri)
///
/// over consecutive groups g of n_g rows of weight W_g (the parts of a batch that weigh differently),
/// and terms k: a prediction p_k against a target q_k with a weight w_kr per row, where p_k moves by
/// s_k per unit of the trained output x (plain flow matching: one term, w = s = 1). Rows come in passes
/// (`add`), whose gradients are written pass by pass; a row's sum is taken in order in single
/// precision, the groups' in double precision.
public struct WeightedMSE {
    public struct Group: Sendable {
        public var rows: Int
        public var weight: Float
        public init(rows: Int, weight: Float = 1) { self.rows = rows; self.weight = weight }
    }

    /// One squared difference of the loss, its pointers at the pass's first row.
    public struct Term {
        public var prediction: UnsafePointer<Float>
        public var target: UnsafePointer<Float>
        /// A weight per row of the pass (nil: 1).
        public var weights: [Float]?
        /// ∂prediction/∂x.
        public var slope: Float
        public init(_ prediction: UnsafePointer<Float>, _ target: UnsafePointer<Float>, weights: [Float]? = nil, slope: Float = 1) {
            self.prediction = prediction; self.target = target; self.weights = weights; self.slope = slope
        }
    }

    public let width: Int
    public let groups: [Group]
    /// Σ_{r∈g} Σ_i Σ_k w·(p − q)² of each group, over the rows added so far.
    public private(set) var sums: [Double]

    public init(width: Int, groups: [Group]) {
        self.width = width; self.groups = groups
        sums = [Double](repeating: 0, count: groups.count)
    }

    /// Adds the batch rows `first..<first + rows`, writing their gradient into `gradient` (rows of the
    /// pass) when given; returns their Σ_r Σ_i Σ_k w·(p − q)².
    @discardableResult
    public mutating func add(_ terms: [Term], first: Int, rows: Int, gradient: UnsafeMutablePointer<Float>?) -> Double {
        precondition(!terms.isEmpty, "a loss of no terms")
        var total = 0.0, g = 0, groupEnd = groups.first?.rows ?? 0
        // Each term's weight of the current row, and that weight times its slope (filled per row).
        var w = [Float](repeating: 1, count: terms.count), ws = w
        for row in 0..<rows {
            while first + row >= groupEnd { g += 1; groupEnd += groups[g].rows }
            let scale = 2 * groups[g].weight / Float(groups[g].rows * width)
            for k in terms.indices { w[k] = terms[k].weights?[row] ?? 1; ws[k] = w[k] * terms[k].slope }
            let t0 = terms[0]
            var s: Float = 0
            for i in (row * width)..<((row + 1) * width) {
                let d0 = t0.prediction[i] - t0.target[i]
                var l = w[0] * d0 * d0, dx = ws[0] * d0
                for k in 1..<terms.count {
                    let d = terms[k].prediction[i] - terms[k].target[i]
                    l += w[k] * d * d
                    dx += ws[k] * d
                }
                s += l
                gradient?[i] = scale * dx
            }
            sums[g] += Double(s)
            total += Double(s)
        }
        return total
    }

    /// L over the rows added so far (groups without rows count nothing).
    public var loss: Float {
        var total = 0.0
        for (g, group) in groups.enumerated() where group.rows > 0 {
            total += Double(group.weight) * sums[g] / Double(group.rows * width)
        }
        return Float(total)
    }

    /// The mean of group `g`'s squared differences, without its weight.
    public func mean(ofGroup g: Int) -> Float { Float(sums[g] / Double(groups[g].rows * width)) }
}
