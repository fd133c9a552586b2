/// Global gradient-norm clipping (`torch.nn.utils.clip_grad_norm_`): if the L2 norm of all gradients
/// taken together exceeds `maxNorm`, every gradient is scaled by maxNorm / (norm + 1e-6).
public enum GradClip {
    /// The L2 norm of all `grads` taken as one vector (accumulated in double precision).
    public static func globalNorm(_ grads: [Tensor]) -> Float {
        var total = 0.0
        for g in grads {
            let p = g.data, n = g.count
            var i = 0
            while i < n {
                let end = min(n, i + 4096)
                var s8 = F8()
                while i + 8 <= end { let x = load8(p + i); s8 += x * x; i += 8 }
                var s = Double(s8.sum())
                while i < end { s += Double(p[i]) * Double(p[i]); i += 1 }
                total += s
            }
        }
        return Float(total.squareRoot())
    }

    /// Clips in place and returns the norm before clipping (non-finite norms are returned and nothing
    /// is scaled, so the caller can skip the step).
    @discardableResult
    public static func clip(_ grads: [Tensor], maxNorm: Float) -> Float {
        let norm = globalNorm(grads)
        guard norm.isFinite, norm > maxNorm else { return norm }
        let k = maxNorm / (norm + 1e-6)
        for g in grads { map8(g.data, g.data, g.count) { $0 * k } }
        return norm
    }
}
