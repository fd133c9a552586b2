import Foundation

/// One update of a sample from σ to σ_next (< σ) given the velocity v, over `count` values.
public enum SamplerStep {
    /// Euler ODE step: x ← x + (σ_next − σ)·v.
    public static func euler(x: UnsafeMutablePointer<Float>, velocity v: UnsafePointer<Float>, sigma: Float,
                             sigmaNext: Float, count: Int) {
        let dt = sigmaNext - sigma
        for i in 0..<count { x[i] += dt * v[i] }
    }

    /// The noise scale of Flow-GRPO's SDE step at σ: `a·√(σ / (1 − σ))`, where at σ = 1 the σ of the
    /// denominator is replaced by `sigmaGuard` (Flow-GRPO uses the schedule's second σ) to stay finite.
    public static func sdeStd(sigma: Float, sigmaGuard: Float, noiseLevel a: Float) -> Float {
        let denom = 1 - (sigma == 1 ? sigmaGuard : sigma)
        return (sigma / denom).squareRoot() * a
    }

    /// Flow-GRPO's SDE step (yifan123/flow_grpo, `sde_step_with_logprob`, sde_type "sde"): with
    /// dt = σ_next − σ and s = `sdeStd`,
    ///     mean   = x·(1 + s²/(2σ)·dt) + v·(1 + s²·(1 − σ)/(2σ))·dt
    ///     x_next = mean + s·√(−dt)·ε
    /// `noise` holds ε ~ N(0, I). Noise level a = 0 is the Euler step.
    public static func sde(x: UnsafeMutablePointer<Float>, velocity v: UnsafePointer<Float>, sigma: Float,
                           sigmaNext: Float, sigmaGuard: Float, noiseLevel: Float, noise: UnsafePointer<Float>,
                           count: Int) {
        let dt = sigmaNext - sigma
        let s = sdeStd(sigma: sigma, sigmaGuard: sigmaGuard, noiseLevel: noiseLevel)
        let kx = 1 + s * s / (2 * sigma) * dt
        let kv = (1 + s * s * (1 - sigma) / (2 * sigma)) * dt
        let kn = s * (-dt).squareRoot()
        for i in 0..<count { x[i] = x[i] * kx + v[i] * kv + kn * noise[i] }
    }

    /// Classifier-free guidance, `v = v_u + w·(v_c − v_u)` written as `v_c + (w − 1)·(v_c − v_u)` so
    /// that w = 1 gives the conditional velocity exactly. Result in `cond`.
    public static func guide(cond: UnsafeMutablePointer<Float>, uncond: UnsafePointer<Float>, scale w: Float,
                             count: Int) {
        let k = w - 1
        for i in 0..<count { cond[i] += k * (cond[i] - uncond[i]) }
    }
}
