import XCTest
import Tensors

/// The finite-difference checker must reject backwards that are slightly or structurally wrong;
/// otherwise passing `GradientTests` would mean nothing.
final class GradCheckSelfTests: XCTestCase {
    func linearCheck(mutate: (_ grads: [Tensor]) -> Void) -> GradCheck.Result {
        var rng = RNG(seed: 21)
        let (m, k, n) = (6, 9, 9)  // square weight so a transposed dW has the right shape
        let x = randn([m, k], &rng), w = randn([n, k], &rng), b = randn([n], &rng), y = Tensor(zeros: [m, n])
        return GradCheck().run(inputs: [("x", x), ("W", w), ("b", b)], outputs: [y], forward: {
            Linear.forward(x: x.data, weight: w.data, bias: b.data, y: y.data, rows: m, inFeatures: k, outFeatures: n)
        }, backward: { d, g in
            Linear.backward(dy: d[0].data, x: x.data, weight: w.data, dx: g[0].data, dWeight: g[1].data, dBias: g[2].data,
                            rows: m, inFeatures: k, outFeatures: n)
            mutate(g)
        })
    }

    func testCorrectBackwardPasses() {
        XCTAssertTrue(linearCheck { _ in }.passed)
    }

    func testScaledGradientFails() {
        let r = linearCheck { g in for i in 0..<g[1].count { g[1][i] *= 1.05 } }
        XCTAssertFalse(r.passed, "a weight gradient 5% too large must fail")
        XCTAssertTrue(r.failures.contains { $0.input.hasPrefix("W") })
    }

    func testTransposedWeightGradientFails() {
        let r = linearCheck { g in
            let t = g[1].copy()
            for i in 0..<9 { for j in 0..<9 { g[1][i * 9 + j] = t[j * 9 + i] } }
        }
        XCTAssertFalse(r.passed, "a transposed weight gradient must fail")
    }

    func testOneWrongElementFails() {
        // A single missing tail element (what a SIMD remainder bug looks like).
        let r = linearCheck { g in g[0][g[0].count - 1] = 0 }
        XCTAssertFalse(r.passed)
        XCTAssertTrue(r.failures.contains { $0.input == "x" && $0.index == 6 * 9 - 1 })
    }

    func testWrongAttentionBackwardFails() {
        var rng = RNG(seed: 22)
        let (bsz, t, h, dh) = (2, 5, 2, 4)
        let q = randn([bsz, t, h, dh], &rng), k = randn([bsz, t, h, dh], &rng), v = randn([bsz, t, h, dh], &rng)
        let out = Tensor(zeros: [bsz, t, h * dh]), probs = Tensor(zeros: [bsz, h, t, t]), scratch = Tensor(zeros: [bsz, h, t, t])
        // Wiring bug: the key gradient is accumulated into dq's buffer (q gets too much, k gets nothing).
        let r = GradCheck().run(inputs: [("q", q), ("k", k), ("v", v)], outputs: [out], forward: {
            Attention.forward(q: q.data, k: k.data, v: v.data, mask: nil, out: out.data, probs: probs.data,
                              batch: bsz, tokens: t, heads: h, headDim: dh)
        }, backward: { d, g in
            Attention.backward(dout: d[0].data, q: q.data, k: k.data, v: v.data, probs: probs.data, dq: g[0].data,
                               dk: g[0].data, dv: g[2].data, scratch: scratch.data, batch: bsz, tokens: t, heads: h,
                               headDim: dh)
        })
        XCTAssertFalse(r.passed)
        XCTAssertTrue(r.failures.contains { $0.input.hasPrefix("k") })
        XCTAssertTrue(r.failures.contains { $0.input.hasPrefix("q") })
    }
}
