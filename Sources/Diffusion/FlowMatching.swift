import Foundation
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
}
