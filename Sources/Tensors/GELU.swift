import CKernels
import Foundation

/// The Gaussian error linear unit, elementwise.
///
/// `.tanh`: 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))) — PyTorch `approximate="tanh"`, what FLUX's
/// feed-forward uses (`gelu-approximate`). `.erf`: 0.5·x·(1 + erf(x/√2)) — exact GELU, what BERT uses.
public enum GELU {
    public enum Approximation: Sendable { case tanh, erf }

    static let k0: Float = 0.7978845608028654  // √(2/π)
    static let k1: Float = 0.044715
    static let invSqrt2: Float = 0.7071067811865476
    static let invSqrt2Pi: Float = 0.3989422804014327

    @_transparent static func tanhForward(_ v: F8) -> F8 {
        let u: F8 = v + k1 * v * v * v
        let t: F8 = tanh8(k0 * u)
        return 0.5 * v * (1 + t)
    }

    @_transparent static func tanhDerivative(_ v: F8) -> F8 {
        let v2: F8 = v * v
        let u: F8 = v + k1 * v2 * v
        let t: F8 = tanh8(k0 * u)
        let du: F8 = k0 * (1 + (3 * k1) * v2)
        let half: F8 = 0.5 * v * (1 - t * t)
        return 0.5 * (1 + t) + half * du
    }

    /// y = gelu(x) for `count` elements; `y` may equal `x`.
    public static func forward(x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, count: Int,
                               approximation: Approximation) {
        Parallel.forEachChunk(count, minChunk: 16384) { range in
            let xs = x + range.lowerBound, ys = y + range.lowerBound, n = range.count
            switch approximation {
            case .tanh:
                if erudiff_gelu_tanh(xs, ys, n) != 0 { return }  // AVX-512 or AVX2
                var i = 0
                while i + 8 <= n { store8(tanhForward(load8(xs + i)), ys + i); i += 8 }
                if i < n { storePartial(tanhForward(loadPartial(xs + i, n - i)), ys + i, n - i) }
            case .erf:
                erudiff_gelu_erf(xs, ys, n)
            }
        }
    }

    /// dx += dy·gelu′(x); `x` is forward's input.
    public static func backward(dy: UnsafePointer<Float>, x: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>?,
                                count: Int, approximation: Approximation) {
        guard let dx else { return }
        Parallel.forEachChunk(count, minChunk: 16384) { range in
            let lo = range.lowerBound, n = range.count
            switch approximation {
            case .tanh:
                let xs = x + lo, gs = dy + lo, ds = dx + lo
                if erudiff_gelu_tanh_backward(gs, xs, ds, n) != 0 { return }  // AVX-512 or AVX2
                var i = 0
                while i + 8 <= n { store8(load8(ds + i) + load8(gs + i) * tanhDerivative(load8(xs + i)), ds + i); i += 8 }
                if i < n {
                    let r = n - i
                    let d = loadPartial(ds + i, r) + loadPartial(gs + i, r) * tanhDerivative(loadPartial(xs + i, r))
                    storePartial(d, ds + i, r)
                }
            case .erf:
                let xs = x + lo, gs = dy + lo, ds = dx + lo
                for i in 0..<n {
                    let v = xs[i]
                    let d = 0.5 * (1 + Foundation.erf(v * invSqrt2)) + v * invSqrt2Pi * Foundation.exp(-0.5 * v * v)
                    ds[i] += gs[i] * d
                }
            }
        }
    }
}
