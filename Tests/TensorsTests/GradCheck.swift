import Tensors

/// Central finite-difference check of a kernel's backward.
///
/// The scalar loss is L = Σ_o Σ_i out_o[i]·R_o[i] with fixed random R (so dL/dout = R), summed in double
/// precision. For every element of every checked input, x is moved to x±h (h = 1e-2 by default), the
/// forward is rerun, and (L₊ − L₋)/(x₊ − x₋) is compared with the analytic gradient backward accumulated
/// (given dout = R, into zeroed gradient buffers).
///
/// Tolerance argument (float32 forward, inputs and R of order 1):
/// - truncation error of the central difference is h²/6·|∂³L/∂x³| ≈ 2e-5 for the smooth kernels here
///   (exactly 0 for kernels linear in x: Linear, attention in v, concat, patching, modulation in shift…);
/// - rounding: outputs not affected by the perturbed x are bit-identical in both runs and cancel; the
///   k affected ones carry float rounding ≈ 6e-8·|out| each, so the difference quotient is off by about
///   6e-8·√k·|out·R|/(2h) ≈ 3e-6·√k, i.e. < 1e-4 for the k ≤ a few hundred outputs one input reaches.
/// So an error of 1e-2 relative to the gradient's scale is two orders of magnitude above the noise,
/// while any real mistake (a factor 1.05, a missing term, a transposed gradient, an unhandled SIMD
/// tail) is far larger. Per element: |num − ana| ≤ atol + rtol·|num| with rtol = 1e-2 and
/// atol = 1e-3·(largest |num| of that input) + 1e-4; per input: ‖num − ana‖₂ ≤ 1e-2·‖num‖₂.
struct GradCheck {
    struct Failure: CustomStringConvertible {
        var input: String, index: Int, numeric: Double, analytic: Double
        var description: String { "\(input)[\(index)]: numeric \(numeric), analytic \(analytic)" }
    }

    struct Result {
        var failures: [Failure] = []
        var checked = 0
        var worstRelativeNorm = 0.0
        var passed: Bool { failures.isEmpty && checked > 0 }
    }

    var h: Float = 1e-2
    var rtol = 1e-2
    var seed: UInt64 = 12345

    /// - inputs: the tensors to perturb (named for messages); they are restored afterwards.
    /// - outputs: every output of the kernel (what forward writes).
    /// - forward: recomputes all outputs from the current inputs.
    /// - backward: given dout (one per output) accumulates into the grads (one per input, zeroed).
    func run(inputs: [(String, Tensor)], outputs: [Tensor], forward: () -> Void,
             backward: (_ douts: [Tensor], _ grads: [Tensor]) -> Void) -> Result {
        var rng = RNG(seed: seed, stream: 99)
        forward()
        let r = outputs.map { o -> Tensor in
            let t = Tensor(zeros: o.shape)
            for i in 0..<t.count { t[i] = rng.normal() }
            return t
        }
        let grads = inputs.map { Tensor(zeros: $0.1.shape) }
        backward(r, grads)

        func loss() -> Double {
            forward()
            var s = 0.0
            for (o, ro) in zip(outputs, r) {
                for i in 0..<o.count { s += Double(o[i]) * Double(ro[i]) }
            }
            return s
        }

        var result = Result()
        for (k, (name, x)) in inputs.enumerated() {
            var numeric = [Double](repeating: 0, count: x.count)
            for i in 0..<x.count {
                let v = x[i]
                let vp = v + h, vm = v - h
                x[i] = vp
                let lp = loss()
                x[i] = vm
                let lm = loss()
                x[i] = v
                numeric[i] = (lp - lm) / (Double(vp) - Double(vm))
            }
            forward()  // leave outputs consistent with restored inputs
            let scale = numeric.map { abs($0) }.max() ?? 0
            let atol = 1e-3 * scale + 1e-4
            var diff2 = 0.0, num2 = 0.0
            for i in 0..<x.count {
                let a = Double(grads[k][i]), n = numeric[i]
                diff2 += (a - n) * (a - n); num2 += n * n
                if abs(a - n) > atol + rtol * abs(n) {
                    result.failures.append(Failure(input: name, index: i, numeric: n, analytic: a))
                }
                result.checked += 1
            }
            let rel = num2 > 0 ? (diff2 / num2).squareRoot() : diff2.squareRoot()
            result.worstRelativeNorm = max(result.worstRelativeNorm, rel)
            if rel > rtol {
                result.failures.append(Failure(input: name + " (whole-tensor relative error \(rel))", index: -1,
                                               numeric: num2.squareRoot(), analytic: diff2.squareRoot()))
            }
            if num2 == 0 {
                // A gradient that is identically zero everywhere would make the check vacuous.
                result.failures.append(Failure(input: name + " (numeric gradient is all zero)", index: -1,
                                               numeric: 0, analytic: diff2.squareRoot()))
            }
        }
        return result
    }
}

/// A tensor of standard normal draws (never exactly zero in practice).
func randn(_ shape: [Int], _ rng: inout RNG, std: Float = 1, mean: Float = 0) -> Tensor {
    let t = Tensor(zeros: shape)
    for i in 0..<t.count { t[i] = mean + std * rng.normal() }
    return t
}
