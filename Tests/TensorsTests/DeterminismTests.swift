import XCTest
import Tensors

/// Results must not depend on how many threads the kernels use (disjoint outputs per range).
final class DeterminismTests: XCTestCase {
    override func tearDown() { Parallel.threads = ProcessInfo.processInfo.activeProcessorCount }

    func run(threads: Int) -> [[Float]] {
        Parallel.threads = threads
        var rng = RNG(seed: 51)
        let (bsz, t, h, dh) = (8, 40, 4, 32), c = h * dh, rows = bsz * t
        let x = randn([rows, c], &rng), w = randn([c], &rng), b = randn([c], &rng), dy = randn([rows, c], &rng)
        let y = Tensor(zeros: x.shape), mean = Tensor(zeros: [rows]), rstd = Tensor(zeros: [rows])
        let dx = Tensor(zeros: x.shape), dw = Tensor(zeros: [c]), db = Tensor(zeros: [c])
        LayerNorm.forward(x: x.data, weight: w.data, bias: b.data, y: y.data, mean: mean.data, rstd: rstd.data,
                          rows: rows, channels: c, eps: 1e-5)
        LayerNorm.backward(dy: dy.data, x: x.data, weight: w.data, mean: mean.data, rstd: rstd.data, dx: dx.data,
                           dWeight: dw.data, dBias: db.data, rows: rows, channels: c)
        let g = Tensor(zeros: x.shape)
        GELU.forward(x: x.data, y: g.data, count: x.count, approximation: .tanh)
        let q = randn([bsz, t, h, dh], &rng), k = randn([bsz, t, h, dh], &rng), v = randn([bsz, t, h, dh], &rng)
        let out = Tensor(zeros: [rows, c]), probs = Tensor(zeros: [bsz, h, t, t]), scratch = Tensor(zeros: probs.shape)
        let dq = Tensor(zeros: q.shape), dk = Tensor(zeros: k.shape), dv = Tensor(zeros: v.shape)
        Attention.forward(q: q.data, k: k.data, v: v.data, mask: nil, out: out.data, probs: probs.data, batch: bsz,
                          tokens: t, heads: h, headDim: dh)
        Attention.backward(dout: dy.data, q: q.data, k: k.data, v: v.data, probs: probs.data, dq: dq.data, dk: dk.data,
                           dv: dv.data, scratch: scratch.data, batch: bsz, tokens: t, heads: h, headDim: dh)
        let noise = Tensor.randn([4097], rng: &rng)
        return [y, dx, dw, db, g, out, dq, dk, dv, noise].map(\.array)
    }

    func testKernelsIndependentOfThreadCount() {
        let one = run(threads: 1), two = run(threads: 2), four = run(threads: 4)
        XCTAssertEqual(one, two)
        XCTAssertEqual(one, four)
    }
}
