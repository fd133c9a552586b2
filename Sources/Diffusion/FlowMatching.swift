import Foundation
import Models
import Tensors

/// The rectified-flow convention of FLUX and SD3 (DESIGN.md §4): `x_t = (1 − t)·x0 + t·ε` with
/// ε ~ N(0, I) and t ∈ [0, 1] (t = 1 is pure noise); the model predicts the velocity `v ≈ ε − x0`;
/// sampling integrates dx/dt = v from t = 1 down to t = 0.
public enum FlowMatching {
    /// x_t = (1 − t)·x0 + t·ε over `count` values.
    public static func noisy(x0: UnsafePointer<Float>, noise: UnsafePointer<Float>, t: Float,
                             into xt: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count { xt[i] = (1 - t) * x0[i] + t * noise[i] }
    }

    /// The regression target of the velocity, ε − x0.
    public static func velocity(x0: UnsafePointer<Float>, noise: UnsafePointer<Float>,
                                into v: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count { v[i] = noise[i] - x0[i] }
    }

    /// The clean sample a velocity implies at time t: x0 = x_t − t·v.
    public static func denoised(xt: UnsafePointer<Float>, velocity v: UnsafePointer<Float>, t: Float,
                                into x0: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count { x0[i] = xt[i] - t * v[i] }
    }

    /// A logit-normal time: sigmoid(m + s·z), z ~ N(0, 1) (SD3's training distribution; m = 0, s = 1
    /// by default).
    public static func logitNormalTime(_ rng: inout RNG, mean: Float = 0, std: Float = 1) -> Float {
        let z = mean + std * rng.normal()
        return 1 / (1 + Foundation.exp(-z))
    }

    /// The smallest time the sample target divides by: its velocity (x_t − x̂0)/t would otherwise grow
    /// without bound near the data (JiT clips the same denominator at 0.05).
    public static let sampleTargetMinTime: Float = 0.05

    /// The divisor of the sample target's velocity at time t.
    public static func sampleTargetDivisor(_ t: Float) -> Float { max(t, sampleTargetMinTime) }

    /// Turns a network's outputs into velocities in place: nothing for `.velocity`; for `.sample`,
    /// v = (x_t − x̂0) / max(t, t_min).
    public static func velocity(fromOutput out: UnsafeMutablePointer<Float>, prediction: PredictionTarget,
                                xt: UnsafePointer<Float>, t: Float, count: Int) {
        guard prediction == .sample else { return }
        let k = 1 / sampleTargetDivisor(t)
        for i in 0..<count { out[i] = (xt[i] - out[i]) * k }
    }

    /// `velocity(fromOutput:…)` over `times.count` rows of `perRow` values, row r at time `times[r]`.
    public static func velocities<C: Collection<Float>>(fromOutput out: UnsafeMutablePointer<Float>,
                                                        prediction: PredictionTarget, xt: UnsafePointer<Float>,
                                                        times: C, perRow: Int) {
        guard prediction != .velocity else { return }
        for (r, t) in times.enumerated() {
            velocity(fromOutput: out + r * perRow, prediction: prediction, xt: xt + r * perRow, t: t, count: perRow)
        }
    }

    /// The backward of `velocities`: turns a loss's gradient with respect to the velocities of
    /// `times.count` rows into its gradient with respect to the network's output, in place.
    public static func outputGradient<C: Collection<Float>>(_ grad: UnsafeMutablePointer<Float>,
                                                            prediction: PredictionTarget, times: C, perRow: Int) {
        guard prediction != .velocity else { return }
        for (r, t) in times.enumerated() {
            let k = velocityJacobian(prediction: prediction, t: t), g = grad + r * perRow
            for i in 0..<perRow { g[i] *= k }
        }
    }

    /// The derivative of that velocity with respect to the output (a constant per row): 1 for
    /// `.velocity`, −1 / max(t, t_min) for `.sample`. A loss's gradient in velocity space times this is
    /// its gradient with respect to the network's output.
    public static func velocityJacobian(prediction: PredictionTarget, t: Float) -> Float {
        prediction == .sample ? -1 / sampleTargetDivisor(t) : 1
    }
}
