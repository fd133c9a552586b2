import XCTest
import Foundation
import Tensors

/// Forward values of every kernel against plain scalar loops in double precision.
final class ForwardTests: XCTestCase {
    func assertClose(_ got: Tensor, _ want: [Double], tol: Double = 2e-5, _ what: String,
                     file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(got.count, want.count, what, file: file, line: line)
        var worst = 0.0, at = -1
        for i in 0..<min(got.count, want.count) {
            let e = abs(Double(got[i]) - want[i]) / max(1, abs(want[i]))
            if e > worst { worst = e; at = i }
        }
        XCTAssertLessThanOrEqual(worst, tol, "\(what): worst relative error \(worst) at \(at)", file: file, line: line)
    }

    func d(_ t: Tensor) -> [Double] { t.array.map(Double.init) }

    func testLinear() {
        var rng = RNG(seed: 31)
        for (m, k, n, rank) in [(5, 7, 3, 2), (16, 33, 17, 0), (1, 8, 8, 4)] {
            let x = randn([m, k], &rng), w = randn([n, k], &rng), b = randn([n], &rng)
            let a = randn([max(rank, 1), k], &rng), bb = randn([n, max(rank, 1)], &rng), hid = Tensor(zeros: [m, max(rank, 1)])
            let y = Tensor(zeros: [m, n]), s: Float = 0.5
            Linear.forward(x: x.data, weight: w.data, bias: b.data, y: y.data, rows: m, inFeatures: k, outFeatures: n,
                           lora: rank > 0 ? .init(a: a.data, b: bb.data, rank: rank, scale: s, hidden: hid.data) : nil)
            let (X, W, B, A, BB) = (d(x), d(w), d(b), d(a), d(bb))
            var want = [Double](repeating: 0, count: m * n)
            for i in 0..<m {
                var xa = [Double](repeating: 0, count: rank)
                for r in 0..<rank { for j in 0..<k { xa[r] += X[i * k + j] * A[r * k + j] } }
                for o in 0..<n {
                    var acc = B[o]
                    for j in 0..<k { acc += X[i * k + j] * W[o * k + j] }
                    for r in 0..<rank { acc += Double(s) * xa[r] * BB[o * rank + r] }
                    want[i * n + o] = acc
                }
            }
            assertClose(y, want, tol: 1e-5, "Linear \(m)×\(k)→\(n) r\(rank)")
        }
    }

    func testLayerNormAndRMSNorm() {
        var rng = RNG(seed: 32)
        for (rows, c) in [(3, 5), (4, 64), (2, 37)] {
            let x = randn([rows, c], &rng, std: 3, mean: 1), w = randn([c], &rng), b = randn([c], &rng)
            let y = Tensor(zeros: [rows, c]), y2 = Tensor(zeros: [rows, c]), y3 = Tensor(zeros: [rows, c])
            let mean = Tensor(zeros: [rows]), rstd = Tensor(zeros: [rows])
            LayerNorm.forward(x: x.data, weight: w.data, bias: b.data, y: y.data, mean: mean.data, rstd: rstd.data,
                              rows: rows, channels: c, eps: 1e-5)
            LayerNorm.forward(x: x.data, weight: nil, bias: nil, y: y2.data, mean: nil, rstd: nil, rows: rows,
                              channels: c, eps: 1e-5)
            RMSNorm.forward(x: x.data, weight: w.data, y: y3.data, rstd: nil, rows: rows, channels: c, eps: 1e-6)
            let X = d(x), W = d(w), B = d(b)
            var ln = [Double](), lnPlain = [Double](), rms = [Double]()
            for r in 0..<rows {
                let row = Array(X[(r * c)..<((r + 1) * c)])
                let mu = row.reduce(0, +) / Double(c)
                let v = row.map { ($0 - mu) * ($0 - mu) }.reduce(0, +) / Double(c)
                let ms = row.map { $0 * $0 }.reduce(0, +) / Double(c)
                for j in 0..<c {
                    let xh = (row[j] - mu) / (v + 1e-5).squareRoot()
                    ln.append(xh * W[j] + B[j]); lnPlain.append(xh)
                    rms.append(row[j] / (ms + 1e-6).squareRoot() * W[j])
                }
            }
            assertClose(y, ln, "LayerNorm affine"); assertClose(y2, lnPlain, "LayerNorm plain")
            assertClose(y3, rms, "RMSNorm")
        }
    }

    func testActivations() {
        for level in CPUKernels.available { CPUKernels.withLevel(level) {
            var rng = RNG(seed: 33)
            // Wide range, including values where exp over/underflows inside tanh and sigmoid.
            let n = 1003
            let x = randn([n], &rng, std: 4)
            x[0] = 0; x[1] = -60; x[2] = 60; x[3] = -100; x[4] = 100; x[5] = 1e-4
            let gt = Tensor(zeros: [n]), ge = Tensor(zeros: [n]), si = Tensor(zeros: [n])
            GELU.forward(x: x.data, y: gt.data, count: n, approximation: .tanh)
            GELU.forward(x: x.data, y: ge.data, count: n, approximation: .erf)
            SiLU.forward(x: x.data, y: si.data, count: n)
            let X = d(x)
            assertClose(gt, X.map { 0.5 * $0 * (1 + tanh(0.7978845608028654 * ($0 + 0.044715 * $0 * $0 * $0))) }, "GELU tanh \(level)")
            assertClose(ge, X.map { 0.5 * $0 * (1 + erf($0 / 2.0.squareRoot())) }, "GELU erf \(level)")
            assertClose(si, X.map { $0 / (1 + exp(-$0)) }, "SiLU")
        } }
    }

    func testSoftmax() {
        for level in CPUKernels.available { CPUKernels.withLevel(level) {
            var rng = RNG(seed: 34)
            for (rows, c) in [(3, 5), (2, 97), (4, 8)] {
                let x = randn([rows, c], &rng, std: 5), y = Tensor(zeros: [rows, c])
                x[0] = 80; x[1] = -1e9  // large logits must not overflow; masked entries vanish
                Softmax.forward(x: x.data, y: y.data, rows: rows, cols: c)
                let X = d(x)
                var want = [Double]()
                for r in 0..<rows {
                    let row = X[(r * c)..<((r + 1) * c)], m = row.max()!
                    let e = row.map { exp($0 - m) }, s = e.reduce(0, +)
                    want += e.map { $0 / s }
                }
                assertClose(y, want, tol: 1e-6, "Softmax \(rows)×\(c) \(level)")
            }
            let allMasked = Tensor(shape: [1, 4], values: [-.infinity, -.infinity, -.infinity, -.infinity])
            let out = Tensor(zeros: [1, 4])
            Softmax.forward(x: allMasked.data, y: out.data, rows: 1, cols: 4)
            XCTAssertEqual(out.array, [0, 0, 0, 0], "\(level)")
        } }
    }

    func testAttention() {
        var rng = RNG(seed: 35)
        for (bsz, t, h, dh, masked) in [(2, 5, 3, 4, true), (1, 9, 2, 8, false), (3, 17, 4, 32, true)] {
            let q = randn([bsz, t, h, dh], &rng), k = randn([bsz, t, h, dh], &rng), v = randn([bsz, t, h, dh], &rng)
            let mask = Tensor(zeros: [bsz, t])
            if masked { for b in 0..<bsz { mask[b * t + t - 1] = -1e9; mask[b * t + 1] = -.infinity } }
            let out = Tensor(zeros: [bsz, t, h * dh]), probs = Tensor(zeros: [bsz, h, t, t])
            Attention.forward(q: q.data, k: k.data, v: v.data, mask: masked ? mask.data : nil, out: out.data,
                              probs: probs.data, batch: bsz, tokens: t, heads: h, headDim: dh)
            let Q = d(q), K = d(k), V = d(v), M = d(mask), ld = h * dh
            var want = [Double](repeating: 0, count: bsz * t * ld), wantP = [Double](repeating: 0, count: bsz * h * t * t)
            for b in 0..<bsz { for hh in 0..<h { for i in 0..<t {
                var s = [Double](repeating: 0, count: t)
                for j in 0..<t {
                    for e in 0..<dh { s[j] += Q[(b * t + i) * ld + hh * dh + e] * K[(b * t + j) * ld + hh * dh + e] }
                    s[j] = s[j] / Double(dh).squareRoot() + (masked ? M[b * t + j] : 0)
                }
                let mx = s.max()!, e = s.map { exp($0 - mx) }, z = e.reduce(0, +)
                for j in 0..<t {
                    let p = e[j] / z
                    wantP[((b * h + hh) * t + i) * t + j] = p
                    for c in 0..<dh { want[(b * t + i) * ld + hh * dh + c] += p * V[(b * t + j) * ld + hh * dh + c] }
                }
            } } }
            assertClose(out, want, tol: 1e-5, "Attention out B\(bsz) T\(t)")
            assertClose(probs, wantP, tol: 1e-6, "Attention probs B\(bsz) T\(t)")
        }
    }

    func testRotary() {
        var rng = RNG(seed: 36)
        for (bsz, t, h, dh) in [(2, 3, 2, 4), (1, 5, 3, 10), (2, 4, 2, 32)] {
            let x = randn([bsz, t, h, dh], &rng), y = Tensor(zeros: x.shape)
            let theta = (0..<(t * dh / 2)).map { _ in Double(rng.uniform()) * 6.283 }
            let c = Tensor(shape: [t, dh / 2], values: theta.map { Float(cos($0)) })
            let s = Tensor(shape: [t, dh / 2], values: theta.map { Float(sin($0)) })
            Rotary.forward(x: x.data, cos: c.data, sin: s.data, y: y.data, batch: bsz, tokens: t, heads: h, headDim: dh)
            // diffusers: x_rotated = stack([-x_imag, x_real]).flatten; out = x·cos + x_rotated·sin with
            // cos/sin repeat-interleaved over the pair.
            let X = d(x), C = d(c), S = d(s)
            var want = [Double](repeating: 0, count: x.count)
            for b in 0..<bsz { for tt in 0..<t { for hh in 0..<h { for e in 0..<dh {
                let base = ((b * t + tt) * h + hh) * dh, pair = e / 2
                let rotated = e % 2 == 0 ? -X[base + e + 1] : X[base + e - 1]
                want[base + e] = X[base + e] * C[tt * dh / 2 + pair] + rotated * S[tt * dh / 2 + pair]
            } } } }
            assertClose(y, want, tol: 1e-6, "Rotary Dh\(dh)")
            // In place gives the same.
            let z = x.copy()
            Rotary.forward(x: z.data, cos: c.data, sin: s.data, y: z.data, batch: bsz, tokens: t, heads: h, headDim: dh)
            XCTAssertEqual(z.array, y.array)
        }
    }

    func testEmbeddingModulationResidualConcat() {
        var rng = RNG(seed: 37)
        let table = randn([6, 5], &rng), ids = [3, 0, 5, 3], out = Tensor(zeros: [4, 5])
        Embedding.forward(ids: ids, table: table.data, out: out.data, count: 4, vocabulary: 6, dim: 5)
        XCTAssertEqual(out.array, ids.flatMap { Array(table.array[($0 * 5)..<($0 * 5 + 5)]) })

        let (bsz, t, c) = (2, 3, 11), stride = 4 * c
        let x = randn([bsz, t, c], &rng), hh = randn([bsz, t, c], &rng), mod = randn([bsz, stride], &rng)
        let y = Tensor(zeros: x.shape), g = Tensor(zeros: x.shape)
        Modulate.forward(x: x.data, scale: mod.data + c, shift: mod.data + 3 * c, y: y.data, batch: bsz, tokens: t,
                         channels: c, modStride: stride)
        GatedResidual.forward(x: x.data, gate: mod.data + 2 * c, h: hh.data, y: g.data, batch: bsz, tokens: t,
                              channels: c, gateStride: stride)
        var wm = [Double](), wg = [Double]()
        for b in 0..<bsz { for tt in 0..<t { for j in 0..<c {
            let xi = Double(x[(b * t + tt) * c + j]), hi = Double(hh[(b * t + tt) * c + j])
            wm.append(xi * (1 + Double(mod[b * stride + c + j])) + Double(mod[b * stride + 3 * c + j]))
            wg.append(xi + Double(mod[b * stride + 2 * c + j]) * hi)
        } } }
        assertClose(y, wm, "Modulate"); assertClose(g, wg, "GatedResidual")

        let r = Tensor(zeros: x.shape)
        Residual.forward(a: x.data, b: hh.data, y: r.data, count: x.count)
        XCTAssertEqual(r.array, zip(x.array, hh.array).map { $0 + $1 }, "Residual")

        let a2 = randn([2, 3, 4], &rng), b2 = randn([2, 5, 4], &rng), cat = Tensor(zeros: [2, 8, 4])
        TokenConcat.forward(a: a2.data, b: b2.data, y: cat.data, batch: 2, tokensA: 3, tokensB: 5, channels: 4)
        XCTAssertEqual(cat.array, Array(a2.array[0..<12]) + Array(b2.array[0..<20]) + Array(a2.array[12..<24])
                       + Array(b2.array[20..<40]))
        let sa = Tensor(zeros: a2.shape), sb = Tensor(zeros: b2.shape)
        TokenSplit.forward(x: cat.data, a: sa.data, b: sb.data, batch: 2, tokensA: 3, tokensB: 5, channels: 4)
        XCTAssertEqual(sa.array, a2.array); XCTAssertEqual(sb.array, b2.array)
    }

    /// Patch packing against a literal emulation of diffusers' `_pack_latents` on NCHW:
    /// view (B, C, H/p, p, W/p, p) → permute (0, 2, 4, 1, 3, 5) → reshape (B, (H/p)(W/p), C·p·p).
    func testPatchifyMatchesFluxPackLatents() {
        var rng = RNG(seed: 38)
        for (bsz, hgt, wid, c, p) in [(2, 4, 6, 3, 2), (1, 32, 32, 3, 4), (1, 6, 9, 2, 3)] {
            let img = randn([bsz, hgt, wid, c], &rng)
            let gh = hgt / p, gw = wid / p
            let tokens = Tensor(zeros: [bsz, gh * gw, c * p * p])
            Patchify.forward(image: img.data, tokens: tokens.data, batch: bsz, height: hgt, width: wid, channels: c, patch: p)
            // NCHW latent from the channel-last image.
            func nchw(_ b: Int, _ ch: Int, _ y: Int, _ x: Int) -> Float { img[((b * hgt + y) * wid + x) * c + ch] }
            // Permuted 6-D index order (b, gy, gx, ch, dy, dx), flattened row-major = the reshape.
            var want = [Float]()
            for b in 0..<bsz { for gy in 0..<gh { for gx in 0..<gw { for ch in 0..<c { for dy in 0..<p { for dx in 0..<p {
                want.append(nchw(b, ch, gy * p + dy, gx * p + dx))
            } } } } } }
            XCTAssertEqual(tokens.array, want, "pack p\(p)")
            let back = Tensor(zeros: img.shape)
            Unpatchify.forward(tokens: tokens.data, image: back.data, batch: bsz, height: hgt, width: wid, channels: c, patch: p)
            XCTAssertEqual(back.array, img.array, "unpack ∘ pack = identity")
        }
    }

    /// The weighted MSE against its definition in double precision, its rows added in two passes: groups of
    /// 3 rows at weight 1 and 4 at weight 2.5 (each a mean over its own elements), the first group's mean alone.
    func testWeightedMSE() {
        var rng = RNG(seed: 39)
        let width = 1_429, rows = 7
        let p = randn([rows, width], &rng), t = randn([rows, width], &rng)
        let sq = zip(d(p), d(t)).map { ($0 - $1) * ($0 - $1) }
        let first = sq[..<(3 * width)].reduce(0, +) / Double(3 * width), rest = sq[(3 * width)...].reduce(0, +) / Double(4 * width)
        var mse = WeightedMSE(width: width, groups: [.init(rows: 3), .init(rows: 4, weight: 2.5)])
        mse.add([.init(p.data, t.data)], first: 0, rows: 2, gradient: nil)
        mse.add([.init(p.data + 2 * width, t.data + 2 * width)], first: 2, rows: 5, gradient: nil)
        XCTAssertEqual(Double(mse.loss), first + 2.5 * rest, accuracy: (first + 2.5 * rest) * 2e-5)
        XCTAssertEqual(Double(mse.mean(ofGroup: 0)), first, accuracy: first * 2e-5)
    }
}
