import XCTest
import Tensors

final class OptimizerTests: XCTestCase {
    /// One AdamW step by hand: with m̂ = g and v̂ = g² after the first step, the update is lr·sign(g);
    /// weight decay multiplies p by (1 − lr·λ) independently of the gradient (decoupled), so an entry with
    /// zero gradient only decays.
    func testAdamWFirstStepByHand() {
        let p = Tensor(shape: [3], values: [1.0, -2.0, 0.5]), g = Tensor(shape: [3], values: [0.1, -0.3, 0])
        let opt = AdamW(parameters: [.init(p, grad: g)], lr: 0.1, betas: (0.9, 0.999), eps: 1e-8, weightDecay: 0.01)
        opt.step()
        XCTAssertEqual(p[0], 1.0 * 0.999 - 0.1, accuracy: 1e-6)
        XCTAssertEqual(p[1], -2.0 * 0.999 + 0.1, accuracy: 1e-6)
        XCTAssertEqual(p[2], 0.5 * 0.999, accuracy: 1e-7)  // coupled L2 would give 0.5·0.999 − 0.1
        XCTAssertEqual(opt.stepCount, 1)
    }

    /// Several steps against the scalar formula in double precision, with odd sizes (SIMD tail) and a
    /// parameter excluded from decay.
    func testAdamWMatchesScalarFormula() {
        var rng = RNG(seed: 41)
        let p1 = randn([13], &rng), g1 = Tensor(zeros: [13]), p2 = randn([4, 5], &rng), g2 = Tensor(zeros: [4, 5])
        let (lr, b1, b2, eps, wd) = (0.01, 0.9, 0.99, 1e-6, 0.1)
        let opt = AdamW(parameters: [.init(p1, grad: g1), .init(p2, grad: g2, decays: false)], lr: Float(lr),
                        betas: (Float(b1), Float(b2)), eps: Float(eps), weightDecay: Float(wd))
        var ref = [p1.array.map(Double.init), p2.array.map(Double.init)]
        var m = ref.map { [Double](repeating: 0, count: $0.count) }, v = m
        for step in 1...5 {
            for (j, g) in [g1, g2].enumerated() {
                for i in 0..<g.count { g[i] = rng.normal() }
                let decay = j == 0 ? 1 - lr * wd : 1
                for i in 0..<g.count {
                    let gi = Double(g[i])
                    m[j][i] = b1 * m[j][i] + (1 - b1) * gi
                    v[j][i] = b2 * v[j][i] + (1 - b2) * gi * gi
                    let mh = m[j][i] / (1 - pow(b1, Double(step))), vh = v[j][i] / (1 - pow(b2, Double(step)))
                    ref[j][i] = ref[j][i] * decay - lr * mh / (vh.squareRoot() + eps)
                }
            }
            opt.step()
        }
        for (j, p) in [p1, p2].enumerated() {
            for i in 0..<p.count { XCTAssertEqual(Double(p[i]), ref[j][i], accuracy: 1e-5, "param \(j)[\(i)]") }
        }
    }

    func testClipGlobalNorm() {
        let a = Tensor(shape: [2], values: [3, 4]), b = Tensor(shape: [1], values: [12])
        XCTAssertEqual(GradClip.globalNorm([a, b]), 13, accuracy: 1e-5)
        XCTAssertEqual(GradClip.clip([a, b], maxNorm: 100), 13, accuracy: 1e-5)
        XCTAssertEqual(a.array + b.array, [3, 4, 12])  // below the limit: untouched
        XCTAssertEqual(GradClip.clip([a, b], maxNorm: 6.5), 13, accuracy: 1e-5)
        XCTAssertEqual(a[0], 1.5, accuracy: 1e-5); XCTAssertEqual(a[1], 2, accuracy: 1e-5)
        XCTAssertEqual(b[0], 6, accuracy: 1e-5)
        XCTAssertEqual(GradClip.globalNorm([a, b]), 6.5, accuracy: 1e-4)
        // A long odd-sized gradient: the norm must include the SIMD tail.
        let c = Tensor(shape: [1001], values: [Float](repeating: 1, count: 1001))
        XCTAssertEqual(GradClip.globalNorm([c]), Float(1001).squareRoot(), accuracy: 1e-4)
    }

    /// The training step: clipped, taken, gradients zeroed; a non-finite gradient leaves the parameters.
    func testClippedStep() {
        let p = Tensor(shape: [2], values: [1, 1]), g = Tensor(shape: [2], values: [30, 40])
        let opt = AdamW(parameters: [.init(p, grad: g)], lr: 0.1, weightDecay: 0)
        XCTAssertEqual(opt.step(clipping: [g], maxNorm: 1), 50, accuracy: 1e-4)
        XCTAssertEqual(p[0], 0.9, accuracy: 1e-5); XCTAssertEqual(p[1], 0.9, accuracy: 1e-5)
        XCTAssertEqual(g.array, [0, 0])
        let before = p.array
        g[0] = .nan
        XCTAssertTrue(opt.step(clipping: [g], maxNorm: nil).isNaN)
        XCTAssertEqual(p.array, before)
        XCTAssertEqual(opt.stepCount, 1)
        XCTAssertEqual(g[0], 0)
    }

    /// Warm-up, cosine to the floor at its step and held after it; constant without a floor.
    func testLearningRateSchedule() {
        let s = LearningRateSchedule(peak: 1, warmupSteps: 4, floorFraction: 0.1, floorStep: 14)
        XCTAssertEqual([0, 1, 3].map { s.rate(at: $0) }, [0.25, 0.5, 1])
        XCTAssertEqual(s.rate(at: 4), 1)
        XCTAssertEqual(s.rate(at: 9), 0.55, accuracy: 1e-6)   // half way: 0.1 + 0.9·0.5
        XCTAssertEqual(s.rate(at: 14), 0.1, accuracy: 1e-6)
        XCTAssertEqual(s.rate(at: 20), 0.1, accuracy: 1e-6)
        let c = LearningRateSchedule(peak: 3e-4, warmupSteps: 2)
        XCTAssertEqual([0, 1, 2, 1000].map { c.rate(at: $0) }, [1.5e-4, 3e-4, 3e-4, 3e-4])
        XCTAssertEqual(LearningRateSchedule(peak: 0.5).rate(at: 0), 0.5)
    }
}
