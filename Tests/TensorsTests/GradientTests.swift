import XCTest
import Tensors

/// Every kernel's backward, checked against central finite differences (see `GradCheck`) on random
/// non-zero inputs of several shapes, including sizes that are not multiples of the SIMD width.
final class GradientTests: XCTestCase {
    func expectPass(_ r: GradCheck.Result, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertTrue(r.passed, "\(what): \(r.failures.count) mismatches of \(r.checked); first: "
                      + r.failures.prefix(4).map(\.description).joined(separator: "; "), file: file, line: line)
    }

    func testLinear() {
        var rng = RNG(seed: 1)
        for (m, k, n, rank) in [(3, 5, 4, 0), (7, 13, 9, 3), (16, 8, 24, 4), (5, 17, 1, 2), (9, 6, 41, 2)] {
            for withBias in [true, false] {
                let x = randn([m, k], &rng), w = randn([n, k], &rng), b = randn([n], &rng)
                let a = randn([max(rank, 1), k], &rng), bb = randn([n, max(rank, 1)], &rng)
                let hidden = Tensor(zeros: [m, max(rank, 1)]), y = Tensor(zeros: [m, n])
                let scale: Float = 0.75
                func lora() -> Linear.LoRA? {
                    rank > 0 ? Linear.LoRA(a: a.data, b: bb.data, rank: rank, scale: scale, hidden: hidden.data) : nil
                }
                var inputs = [("x", x), ("W", w)]
                if withBias { inputs.append(("b", b)) }
                if rank > 0 { inputs += [("A", a), ("B", bb)] }
                let r = GradCheck().run(inputs: inputs, outputs: [y], forward: {
                    Linear.forward(x: x.data, weight: w.data, bias: withBias ? b.data : nil, y: y.data,
                                   rows: m, inFeatures: k, outFeatures: n, lora: lora())
                }, backward: { d, g in
                    Linear.backward(dy: d[0].data, x: x.data, weight: w.data, dx: g[0].data, dWeight: g[1].data,
                                    dBias: withBias ? g[2].data : nil, rows: m, inFeatures: k, outFeatures: n,
                                    lora: lora(), dA: rank > 0 ? g[withBias ? 3 : 2].data : nil,
                                    dB: rank > 0 ? g[withBias ? 4 : 3].data : nil)
                })
                expectPass(r, "Linear m\(m) k\(k) n\(n) r\(rank) bias \(withBias)")
            }
        }
    }

    /// Frozen base weights: dWeight and dBias nil, only LoRA and input gradients.
    func testLinearFrozenBaseLoRA() {
        var rng = RNG(seed: 2)
        let (m, k, n, rank) = (6, 11, 7, 3)
        let x = randn([m, k], &rng), w = randn([n, k], &rng), b = randn([n], &rng)
        let a = randn([rank, k], &rng), bb = randn([n, rank], &rng)
        let hidden = Tensor(zeros: [m, rank]), y = Tensor(zeros: [m, n])
        let lora = Linear.LoRA(a: a.data, b: bb.data, rank: rank, scale: 2, hidden: hidden.data)
        let r = GradCheck().run(inputs: [("x", x), ("A", a), ("B", bb)], outputs: [y], forward: {
            Linear.forward(x: x.data, weight: w.data, bias: b.data, y: y.data, rows: m, inFeatures: k,
                           outFeatures: n, lora: lora)
        }, backward: { d, g in
            Linear.backward(dy: d[0].data, x: x.data, weight: w.data, dx: g[0].data, dWeight: nil, dBias: nil,
                            rows: m, inFeatures: k, outFeatures: n, lora: lora, dA: g[1].data, dB: g[2].data)
        })
        expectPass(r, "Linear frozen base + LoRA")
    }

    func testLayerNorm() {
        var rng = RNG(seed: 3)
        for (rows, c) in [(3, 5), (4, 8), (6, 37), (2, 64)] {
            for affine in [true, false] {
                let x = randn([rows, c], &rng), w = randn([c], &rng, std: 0.5, mean: 1), b = randn([c], &rng)
                let y = Tensor(zeros: [rows, c]), mean = Tensor(zeros: [rows]), rstd = Tensor(zeros: [rows])
                let inputs = affine ? [("x", x), ("w", w), ("b", b)] : [("x", x)]
                let r = GradCheck().run(inputs: inputs, outputs: [y], forward: {
                    LayerNorm.forward(x: x.data, weight: affine ? w.data : nil, bias: affine ? b.data : nil, y: y.data,
                                      mean: mean.data, rstd: rstd.data, rows: rows, channels: c, eps: 1e-5)
                }, backward: { d, g in
                    LayerNorm.backward(dy: d[0].data, x: x.data, weight: affine ? w.data : nil, mean: mean.data,
                                       rstd: rstd.data, dx: g[0].data, dWeight: affine ? g[1].data : nil,
                                       dBias: affine ? g[2].data : nil, rows: rows, channels: c)
                })
                expectPass(r, "LayerNorm \(rows)×\(c) affine \(affine)")
            }
        }
    }

    func testRMSNorm() {
        var rng = RNG(seed: 4)
        for (rows, c) in [(3, 5), (5, 16), (4, 33), (2, 32)] {
            let x = randn([rows, c], &rng), w = randn([c], &rng, std: 0.5, mean: 1)
            let y = Tensor(zeros: [rows, c]), rstd = Tensor(zeros: [rows])
            let r = GradCheck().run(inputs: [("x", x), ("w", w)], outputs: [y], forward: {
                RMSNorm.forward(x: x.data, weight: w.data, y: y.data, rstd: rstd.data, rows: rows, channels: c, eps: 1e-6)
            }, backward: { d, g in
                RMSNorm.backward(dy: d[0].data, x: x.data, weight: w.data, rstd: rstd.data, dx: g[0].data,
                                 dWeight: g[1].data, rows: rows, channels: c)
            })
            expectPass(r, "RMSNorm \(rows)×\(c)")
        }
    }

    func testActivations() {
        for level in CPUKernels.available { CPUKernels.withLevel(level) {
            var rng = RNG(seed: 5)
            for n in [5, 8, 37, 100] {
                let x = randn([n], &rng, std: 2), y = Tensor(zeros: [n])
                for approx in [GELU.Approximation.tanh, .erf] {
                    let r = GradCheck().run(inputs: [("x", x)], outputs: [y], forward: {
                        GELU.forward(x: x.data, y: y.data, count: n, approximation: approx)
                    }, backward: { d, g in
                        GELU.backward(dy: d[0].data, x: x.data, dx: g[0].data, count: n, approximation: approx)
                    })
                    expectPass(r, "GELU \(approx) n\(n) \(level)")
                }
                let r = GradCheck().run(inputs: [("x", x)], outputs: [y], forward: {
                    SiLU.forward(x: x.data, y: y.data, count: n)
                }, backward: { d, g in
                    SiLU.backward(dy: d[0].data, x: x.data, dx: g[0].data, count: n)
                })
                expectPass(r, "SiLU n\(n)")
            }
        } }
    }

    func testSoftmax() {
        for level in CPUKernels.available { CPUKernels.withLevel(level) {
            var rng = RNG(seed: 6)
            for (rows, c) in [(3, 5), (4, 17), (2, 64)] {
                let x = randn([rows, c], &rng, std: 2), y = Tensor(zeros: [rows, c])
                let r = GradCheck().run(inputs: [("x", x)], outputs: [y], forward: {
                    Softmax.forward(x: x.data, y: y.data, rows: rows, cols: c)
                }, backward: { d, g in
                    Softmax.backward(dy: d[0].data, y: y.data, dx: g[0].data, rows: rows, cols: c)
                })
                expectPass(r, "Softmax \(rows)×\(c) \(level)")
            }
        } }
    }

    /// A key mask for `batch` sequences of `t` tokens dropping a few keys (never all of one sequence).
    func keyMask(batch: Int, t: Int, _ rng: inout RNG) -> Tensor {
        let m = Tensor(zeros: [batch, t])
        for b in 0..<batch { for j in 1..<t where rng.uniform() < 0.3 { m[b * t + j] = -1e9 } }
        return m
    }

    func testAttention() {
        var rng = RNG(seed: 7)
        for (bsz, t, h, dh) in [(1, 3, 1, 2), (2, 5, 3, 4), (2, 7, 2, 6), (1, 11, 2, 8)] {
            for masked in [false, true] {
                let q = randn([bsz, t, h, dh], &rng), k = randn([bsz, t, h, dh], &rng), v = randn([bsz, t, h, dh], &rng)
                let mask = keyMask(batch: bsz, t: t, &rng)
                let out = Tensor(zeros: [bsz, t, h * dh]), probs = Tensor(zeros: [bsz, h, t, t])
                let scratch = Tensor(zeros: [bsz, h, t, t])
                let r = GradCheck().run(inputs: [("q", q), ("k", k), ("v", v)], outputs: [out], forward: {
                    Attention.forward(q: q.data, k: k.data, v: v.data, mask: masked ? mask.data : nil, out: out.data,
                                      probs: probs.data, batch: bsz, tokens: t, heads: h, headDim: dh)
                }, backward: { d, g in
                    Attention.backward(dout: d[0].data, q: q.data, k: k.data, v: v.data, probs: probs.data,
                                       dq: g[0].data, dk: g[1].data, dv: g[2].data, scratch: scratch.data,
                                       batch: bsz, tokens: t, heads: h, headDim: dh)
                })
                expectPass(r, "Attention B\(bsz) T\(t) H\(h) Dh\(dh) mask \(masked)")
            }
        }
    }

    func rotaryTables(t: Int, half: Int, _ rng: inout RNG) -> (Tensor, Tensor) {
        let c = Tensor(zeros: [t, half]), s = Tensor(zeros: [t, half])
        for i in 0..<(t * half) {
            let a = Double(rng.uniform()) * 2 * Double.pi
            c[i] = Float(cos(a)); s[i] = Float(sin(a))
        }
        return (c, s)
    }

    func testRotary() {
        var rng = RNG(seed: 8)
        for (bsz, t, h, dh) in [(2, 3, 2, 4), (1, 5, 3, 10), (2, 4, 1, 16), (1, 2, 2, 2)] {
            let x = randn([bsz, t, h, dh], &rng), y = Tensor(zeros: [bsz, t, h, dh])
            let (c, s) = rotaryTables(t: t, half: dh / 2, &rng)
            let r = GradCheck().run(inputs: [("x", x)], outputs: [y], forward: {
                Rotary.forward(x: x.data, cos: c.data, sin: s.data, y: y.data, batch: bsz, tokens: t, heads: h, headDim: dh)
            }, backward: { d, g in
                Rotary.backward(dy: d[0].data, cos: c.data, sin: s.data, dx: g[0].data, batch: bsz, tokens: t,
                                heads: h, headDim: dh)
            })
            expectPass(r, "Rotary B\(bsz) T\(t) H\(h) Dh\(dh)")
        }
    }

    /// Rotary on q and k followed by masked attention, as the flow transformer chains them.
    func testRotaryAttentionChain() {
        var rng = RNG(seed: 9)
        let (bsz, t, h, dh) = (2, 6, 2, 6)
        let q = randn([bsz, t, h, dh], &rng), k = randn([bsz, t, h, dh], &rng), v = randn([bsz, t, h, dh], &rng)
        let (c, s) = rotaryTables(t: t, half: dh / 2, &rng)
        let mask = keyMask(batch: bsz, t: t, &rng)
        let qr = Tensor(zeros: q.shape), kr = Tensor(zeros: k.shape)
        let out = Tensor(zeros: [bsz, t, h * dh]), probs = Tensor(zeros: [bsz, h, t, t]), scratch = Tensor(zeros: [bsz, h, t, t])
        let dqr = Tensor(zeros: q.shape), dkr = Tensor(zeros: k.shape)
        let r = GradCheck().run(inputs: [("q", q), ("k", k), ("v", v)], outputs: [out], forward: {
            Rotary.forward(x: q.data, cos: c.data, sin: s.data, y: qr.data, batch: bsz, tokens: t, heads: h, headDim: dh)
            Rotary.forward(x: k.data, cos: c.data, sin: s.data, y: kr.data, batch: bsz, tokens: t, heads: h, headDim: dh)
            Attention.forward(q: qr.data, k: kr.data, v: v.data, mask: mask.data, out: out.data, probs: probs.data,
                              batch: bsz, tokens: t, heads: h, headDim: dh)
        }, backward: { d, g in
            dqr.zero(); dkr.zero()
            Attention.backward(dout: d[0].data, q: qr.data, k: kr.data, v: v.data, probs: probs.data, dq: dqr.data,
                               dk: dkr.data, dv: g[2].data, scratch: scratch.data, batch: bsz, tokens: t, heads: h,
                               headDim: dh)
            Rotary.backward(dy: dqr.data, cos: c.data, sin: s.data, dx: g[0].data, batch: bsz, tokens: t, heads: h, headDim: dh)
            Rotary.backward(dy: dkr.data, cos: c.data, sin: s.data, dx: g[1].data, batch: bsz, tokens: t, heads: h, headDim: dh)
        })
        expectPass(r, "Rotary + attention")
    }

    func testEmbedding() {
        var rng = RNG(seed: 10)
        for (vocab, dim, count) in [(7, 5, 9), (20, 16, 4), (3, 33, 6)] {
            let table = randn([vocab, dim], &rng), out = Tensor(zeros: [count, dim])
            var ids = (0..<count).map { _ in rng.int(below: vocab) }
            ids[count - 1] = ids[0]  // a repeated id must add up in backward
            let r = ids.withUnsafeBufferPointer { idp in
                GradCheck().run(inputs: [("table", table)], outputs: [out], forward: {
                    Embedding.forward(ids: idp.baseAddress!, table: table.data, out: out.data, count: count,
                                      vocabulary: vocab, dim: dim)
                }, backward: { d, g in
                    Embedding.backward(dout: d[0].data, ids: idp.baseAddress!, dTable: g[0].data, count: count,
                                       vocabulary: vocab, dim: dim)
                })
            }
            expectPass(r, "Embedding \(vocab)×\(dim)")
        }
    }

    func testModulate() {
        var rng = RNG(seed: 11)
        for (bsz, t, c, k) in [(2, 3, 5, 3), (3, 4, 16, 6), (1, 5, 33, 2)] {
            // scale and shift are chunks 1 and 0 of a [B, k·C] projection.
            let x = randn([bsz, t, c], &rng), mod = randn([bsz, k * c], &rng, std: 0.5), y = Tensor(zeros: [bsz, t, c])
            let stride = k * c
            let r = GradCheck().run(inputs: [("x", x), ("mod", mod)], outputs: [y], forward: {
                Modulate.forward(x: x.data, scale: mod.data + c, shift: mod.data, y: y.data, batch: bsz, tokens: t,
                                 channels: c, modStride: stride)
            }, backward: { d, g in
                Modulate.backward(dy: d[0].data, x: x.data, scale: mod.data + c, dx: g[0].data, dScale: g[1].data + c,
                                  dShift: g[1].data, batch: bsz, tokens: t, channels: c, modStride: stride)
            })
            expectPass(r, "Modulate \(bsz)×\(t)×\(c)")
        }
    }

    func testGatedResidual() {
        var rng = RNG(seed: 12)
        for (bsz, t, c) in [(2, 3, 5), (3, 4, 16), (1, 5, 33)] {
            let stride = 3 * c
            let x = randn([bsz, t, c], &rng), hh = randn([bsz, t, c], &rng), mod = randn([bsz, stride], &rng)
            let y = Tensor(zeros: [bsz, t, c])
            let gate = mod.data + 2 * c
            let r = GradCheck().run(inputs: [("x", x), ("h", hh), ("mod", mod)], outputs: [y], forward: {
                GatedResidual.forward(x: x.data, gate: gate, h: hh.data, y: y.data, batch: bsz, tokens: t, channels: c,
                                      gateStride: stride)
            }, backward: { d, g in
                GatedResidual.backward(dy: d[0].data, h: hh.data, gate: gate, dx: g[0].data, dh: g[1].data,
                                       dGate: g[2].data + 2 * c, batch: bsz, tokens: t, channels: c, gateStride: stride)
            })
            expectPass(r, "GatedResidual \(bsz)×\(t)×\(c)")
        }
    }

    func testResidual() {
        var rng = RNG(seed: 13)
        for n in [5, 37] {
            let a = randn([n], &rng), b = randn([n], &rng), y = Tensor(zeros: [n])
            let r = GradCheck().run(inputs: [("a", a), ("b", b)], outputs: [y], forward: {
                Residual.forward(a: a.data, b: b.data, y: y.data, count: n)
            }, backward: { d, g in
                Residual.backward(dy: d[0].data, da: g[0].data, db: g[1].data, count: n)
            })
            expectPass(r, "Residual n\(n)")
        }
    }

    func testConcatAndSplit() {
        var rng = RNG(seed: 14)
        for (bsz, t1, t2, c) in [(2, 3, 4, 5), (1, 1, 6, 9), (3, 2, 2, 8)] {
            let a = randn([bsz, t1, c], &rng), b = randn([bsz, t2, c], &rng), y = Tensor(zeros: [bsz, t1 + t2, c])
            let r = GradCheck().run(inputs: [("a", a), ("b", b)], outputs: [y], forward: {
                TokenConcat.forward(a: a.data, b: b.data, y: y.data, batch: bsz, tokensA: t1, tokensB: t2, channels: c)
            }, backward: { d, g in
                TokenConcat.backward(dy: d[0].data, da: g[0].data, db: g[1].data, batch: bsz, tokensA: t1, tokensB: t2,
                                     channels: c)
            })
            expectPass(r, "TokenConcat")
            let x = randn([bsz, t1 + t2, c], &rng), oa = Tensor(zeros: a.shape), ob = Tensor(zeros: b.shape)
            let s = GradCheck().run(inputs: [("x", x)], outputs: [oa, ob], forward: {
                TokenSplit.forward(x: x.data, a: oa.data, b: ob.data, batch: bsz, tokensA: t1, tokensB: t2, channels: c)
            }, backward: { d, g in
                TokenSplit.backward(da: d[0].data, db: d[1].data, dx: g[0].data, batch: bsz, tokensA: t1, tokensB: t2,
                                    channels: c)
            })
            expectPass(s, "TokenSplit")
        }
    }

    func testPatching() {
        var rng = RNG(seed: 15)
        for (bsz, hgt, wid, c, p) in [(2, 4, 6, 3, 2), (1, 6, 3, 2, 3), (1, 8, 8, 3, 4)] {
            let img = randn([bsz, hgt, wid, c], &rng)
            let tok = Tensor(zeros: [bsz, (hgt / p) * (wid / p), c * p * p])
            let r = GradCheck().run(inputs: [("image", img)], outputs: [tok], forward: {
                Patchify.forward(image: img.data, tokens: tok.data, batch: bsz, height: hgt, width: wid, channels: c, patch: p)
            }, backward: { d, g in
                Patchify.backward(dTokens: d[0].data, dImage: g[0].data, batch: bsz, height: hgt, width: wid, channels: c,
                                  patch: p)
            })
            expectPass(r, "Patchify p\(p)")
            let tk = randn(tok.shape, &rng), im = Tensor(zeros: img.shape)
            let u = GradCheck().run(inputs: [("tokens", tk)], outputs: [im], forward: {
                Unpatchify.forward(tokens: tk.data, image: im.data, batch: bsz, height: hgt, width: wid, channels: c, patch: p)
            }, backward: { d, g in
                Unpatchify.backward(dImage: d[0].data, dTokens: g[0].data, batch: bsz, height: hgt, width: wid,
                                    channels: c, patch: p)
            })
            expectPass(u, "Unpatchify p\(p)")
        }
    }

    /// The weighted MSE's gradient in x: plain (one term, one group), and with groups of other weights and
    /// a second term whose prediction a + s·x moves by its slope s, weighted per row.
    func testWeightedMSE() {
        var rng = RNG(seed: 16)
        for (rows, width, groups, slope) in [(1, 5, [WeightedMSE.Group(rows: 1)], nil), (3, 37, [.init(rows: 3)], nil),
                                             (5, 20, [.init(rows: 2), .init(rows: 0, weight: 9), .init(rows: 3, weight: 0.5)], Float(-1.5))] {
            let x = randn([rows, width], &rng), target = randn([rows, width], &rng), a = randn([rows, width], &rng)
            let second = Tensor(zeros: [rows, width]), loss = Tensor(zeros: [1]), grad = Tensor(zeros: [rows, width])
            let weights = (0..<rows).map { Float($0 + 1) / 4 }
            func run(_ gradient: UnsafeMutablePointer<Float>?) -> Float {
                var terms = [WeightedMSE.Term(x.data, target.data)]
                if let s = slope {
                    for i in 0..<x.count { second[i] = a[i] + s * x[i] }
                    terms.append(.init(second.data, target.data, weights: weights, slope: s))
                }
                var mse = WeightedMSE(width: width, groups: groups)
                mse.add(terms, first: 0, rows: rows, gradient: gradient)
                return mse.loss
            }
            let r = GradCheck().run(inputs: [("x", x)], outputs: [loss], forward: { loss[0] = run(nil) }, backward: { d, g in
                _ = run(grad.data)
                for i in 0..<grad.count { g[0][i] += d[0][0] * grad[i] }
            })
            expectPass(r, "WeightedMSE \(rows)×\(width)")
        }
    }
}
