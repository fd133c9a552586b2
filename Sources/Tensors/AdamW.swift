/// Adam with decoupled weight decay (Loshchilov & Hutter), as `torch.optim.AdamW`:
///
///     p ← p·(1 − lr·λ)                      (decay, not through the moments)
///     m ← β1·m + (1 − β1)·g,   v ← β2·v + (1 − β2)·g²
///     p ← p − lr·(m / (1 − β1ᵗ)) / (√(v / (1 − β2ᵗ)) + ε)
///
/// The moment buffers are allocated once, at init, one pair per parameter.
public final class AdamW {
    /// One trained tensor, its gradient (same element count), and whether weight decay applies to it
    /// (usually not for biases and norm weights).
    public struct Parameter {
        public let value: Tensor
        public let grad: Tensor
        public let decays: Bool
        public init(_ value: Tensor, grad: Tensor, decays: Bool = true) {
            precondition(value.count == grad.count, "parameter \(value.shape) with gradient \(grad.shape)")
            self.value = value; self.grad = grad; self.decays = decays
        }
    }

    public var lr: Float
    public var beta1: Float
    public var beta2: Float
    public var eps: Float
    public var weightDecay: Float
    /// Steps taken so far (t in the bias corrections). Settable to resume from saved state.
    public var stepCount: Int = 0
    public let parameters: [Parameter]
    /// First and second moments, one each per parameter (saved/restored with `stepCount` to resume).
    public let m: [Tensor]
    public let v: [Tensor]

    public init(parameters: [Parameter], lr: Float = 1e-3, betas: (Float, Float) = (0.9, 0.999),
                eps: Float = 1e-8, weightDecay: Float = 0.01) {
        self.parameters = parameters
        self.lr = lr; self.beta1 = betas.0; self.beta2 = betas.1; self.eps = eps; self.weightDecay = weightDecay
        self.m = parameters.map { Tensor(zeros: $0.value.shape) }
        self.v = parameters.map { Tensor(zeros: $0.value.shape) }
    }

    /// One update of every parameter from its current gradient (gradients are left as they are).
    public func step() {
        stepCount += 1
        let t = Double(stepCount)
        let bc1 = Float(1 - Double(beta1).power(t)), bc2 = Float(1 - Double(beta2).power(t))
        let stepSize = lr / bc1, invSqrtBC2 = 1 / bc2.squareRoot()
        let b1 = beta1, b2 = beta2, e = eps
        for (j, prm) in parameters.enumerated() {
            let p = prm.value.data, g = prm.grad.data, mj = m[j].data, vj = v[j].data
            let decay: Float = prm.decays ? 1 - lr * weightDecay : 1
            Parallel.forEachChunk(prm.value.count, minChunk: 16384) { range in
                // A plain scalar loop: LLVM vectorises it, square root included.
                for i in range {
                    let gi = g[i]
                    let mi = b1 * mj[i] + (1 - b1) * gi
                    let vi = b2 * vj[i] + (1 - b2) * gi * gi
                    mj[i] = mi; vj[i] = vi
                    p[i] = p[i] * decay - stepSize * mi / (vi.squareRoot() * invSqrtBC2 + e)
                }
            }
        }
    }

    /// A training step as every procedure takes it: the global norm of `gradients` (the parameters'
    /// gradient buffers, as the caller groups them), clipped to `maxNorm` when given; the update, unless
    /// that norm is not finite; the gradients zeroed. Returns the norm before clipping.
    @discardableResult
    public func step(clipping gradients: [Tensor], maxNorm: Float?) -> Float {
        let norm = maxNorm.map { GradClip.clip(gradients, maxNorm: $0) } ?? GradClip.globalNorm(gradients)
        if norm.isFinite { step() }
        for g in gradients { g.zero() }
        return norm
    }
}

extension Double {
    fileprivate func power(_ e: Double) -> Double {
        var r = 1.0
        var n = Int(e)
        var b = self
        while n > 0 { if n & 1 == 1 { r *= b }; b *= b; n >>= 1 }
        return r
    }
}
