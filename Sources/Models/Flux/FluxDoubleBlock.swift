import Tensors

/// FLUX's double-stream block (`FluxTransformerBlock`), forward and backward.
///
/// Each stream s (image, text) has its own weights:
///     mod = Linear_s(silu(temb))                                   6 chunks of C
///     h1  = LN(x_s)·(1 + scale_msa) + shift_msa
///     q, k, v = Linear(h1); q, k ← RMSNorm per head
/// then one attention over the joint sequence [text; image] with rotary q, k, split back, and per stream
///     x1  = x_s + gate_msa·Out_s(o_s)
///     out = x1 + gate_mlp·FF_s(LN(x1)·(1 + scale_mlp) + shift_mlp),   FF = Linear, GELU(tanh), Linear.
enum FluxDoubleBlock {
    /// The weights one stream uses.
    struct StreamWeights {
        let norm, q, k, v, out, ff0, ff2: FluxLinearWeights
        let normQ, normK: Tensor
    }

    static func image(_ w: FluxDoubleBlockWeights) -> StreamWeights {
        StreamWeights(norm: w.norm1, q: w.toQ, k: w.toK, v: w.toV, out: w.toOut, ff0: w.ff0, ff2: w.ff2,
                      normQ: w.normQ, normK: w.normK)
    }

    static func text(_ w: FluxDoubleBlockWeights) -> StreamWeights {
        StreamWeights(norm: w.norm1Context, q: w.addQ, k: w.addK, v: w.addV, out: w.toAddOut, ff0: w.ffContext0,
                      ff2: w.ffContext2, normQ: w.normAddedQ, normK: w.normAddedK)
    }

    // MARK: forward

    /// Runs the block on image tokens `img` `[B·N, C]` and text tokens `txt` `[B·L, C]`; results in
    /// `act.img.out`, `act.txt.out` (which may be `img`, `txt` themselves when not training).
    static func forward(_ w: FluxDoubleBlockWeights, _ act: FluxDoubleBlockActivations,
                        img: UnsafePointer<Float>, txt: UnsafePointer<Float>, pass p: FluxPass) {
        let d = p.dims, ws = p.ws
        // Each stream's normalised q and k go straight to their rows of the joint [text; image] sequence.
        preAttention(image(w), act.img, x: img, tokens: d.n, joint: act, offset: d.l, pass: p)
        preAttention(text(w), act.txt, x: txt, tokens: d.l, joint: act, offset: 0, pass: p)
        TokenConcat.forward(a: act.txt.v, b: act.img.v, y: act.vj, batch: d.b, tokensA: d.l, tokensB: d.n, channels: d.c)
        Rotary.forward(x: act.qj, cos: ws.rope.cos.data, sin: ws.rope.sin.data, y: act.qj,
                       batch: d.b, tokens: d.t, heads: d.h, headDim: d.d)
        Rotary.forward(x: act.kj, cos: ws.rope.cos.data, sin: ws.rope.sin.data, y: act.kj,
                       batch: d.b, tokens: d.t, heads: d.h, headDim: d.d)
        Attention.forward(q: act.qj, k: act.kj, v: act.vj, mask: nil, out: act.oj, probs: act.probs,
                          batch: d.b, tokens: d.t, heads: d.h, headDim: d.d)
        TokenSplit.forward(x: act.oj, a: act.txt.o, b: act.img.o, batch: d.b, tokensA: d.l, tokensB: d.n, channels: d.c)
        postAttention(image(w), act.img, x: img, tokens: d.n, pass: p)
        postAttention(text(w), act.txt, x: txt, tokens: d.l, pass: p)
    }

    /// adaLN, q/k/v projections and q/k RMSNorm of one stream; normalised q, k into rows
    /// `offset..<offset + n` of each sample's joint sequence.
    static func preAttention(_ s: StreamWeights, _ a: FluxDoubleBlockActivations.Stream, x: UnsafePointer<Float>,
                             tokens n: Int, joint: FluxDoubleBlockActivations, offset: Int, pass p: FluxPass) {
        let d = p.dims, c = d.c, r = d.b * n
        p.linear(s.norm, p.ws.siluTemb, a.mod, rows: d.b)
        LayerNorm.forward(x: x, weight: nil, bias: nil, y: a.ln1, mean: a.mean1, rstd: a.rstd1, rows: r,
                          channels: c, eps: 1e-6)
        Modulate.forward(x: a.ln1, scale: a.mod + c, shift: a.mod, y: a.h1, batch: d.b, tokens: n, channels: c,
                         modStride: 6 * c)
        p.linear(s.q, a.h1, a.q, rows: r)
        p.linear(s.k, a.h1, a.k, rows: r)
        p.linear(s.v, a.h1, a.v, rows: r)
        for i in 0..<d.b {
            let src = i * n * c, dst = (i * d.t + offset) * c, rs = i * n * d.h
            RMSNorm.forward(x: a.q + src, weight: s.normQ.data, y: joint.qj + dst, rstd: a.rq + rs, rows: n * d.h,
                            channels: d.d, eps: 1e-6)
            RMSNorm.forward(x: a.k + src, weight: s.normK.data, y: joint.kj + dst, rstd: a.rk + rs, rows: n * d.h,
                            channels: d.d, eps: 1e-6)
        }
    }

    /// Out-projection, gated residual and gated MLP of one stream, into `a.out`.
    static func postAttention(_ s: StreamWeights, _ a: FluxDoubleBlockActivations.Stream, x: UnsafePointer<Float>,
                              tokens n: Int, pass p: FluxPass) {
        let d = p.dims, c = d.c, r = d.b * n
        p.linear(s.out, a.o, a.a, rows: r)
        GatedResidual.forward(x: x, gate: a.mod + 2 * c, h: a.a, y: a.x1, batch: d.b, tokens: n, channels: c,
                              gateStride: 6 * c)
        LayerNorm.forward(x: a.x1, weight: nil, bias: nil, y: a.ln2, mean: a.mean2, rstd: a.rstd2, rows: r,
                          channels: c, eps: 1e-6)
        Modulate.forward(x: a.ln2, scale: a.mod + 4 * c, shift: a.mod + 3 * c, y: a.h2, batch: d.b, tokens: n,
                         channels: c, modStride: 6 * c)
        p.linear(s.ff0, a.h2, a.f1, rows: r)
        GELU.forward(x: a.f1, y: a.g1, count: r * d.m, approximation: .tanh)
        p.linear(s.ff2, a.g1, a.f2, rows: r)
        GatedResidual.forward(x: a.x1, gate: a.mod + 5 * c, h: a.f2, y: a.out, batch: d.b, tokens: n, channels: c,
                              gateStride: 6 * c)
    }

    // MARK: backward

    /// On entry `scratch.dImg`, `scratch.dTxt` hold the gradients of the block's outputs; on return the
    /// gradients of its inputs `img`, `txt` (the forward's). Parameter gradients accumulate into `grads`
    /// (nil: frozen base); adaLN gradients flow into `scratch.dSiluTemb` when the pass wants them.
    static func backward(_ w: FluxDoubleBlockWeights, _ act: FluxDoubleBlockActivations, grads: FluxDoubleBlockWeights?,
                         img: UnsafePointer<Float>, txt: UnsafePointer<Float>, pass p: FluxPass) {
        let d = p.dims, ws = p.ws, s = ws.scratch!
        let gi = grads.map(image), gt = grads.map(text)
        if p.conditioningGrads {
            zero(s.dmodImg, d.b * 6 * d.c)
            zero(s.dmodTxt, d.b * 6 * d.c)
        }
        postAttentionBackward(image(w), act.img, dR: s.dImg, dO: s.dOimg, dmod: s.dmodImg, tokens: d.n, pass: p)
        postAttentionBackward(text(w), act.txt, dR: s.dTxt, dO: s.dOtxt, dmod: s.dmodTxt, tokens: d.l, pass: p)
        TokenConcat.forward(a: s.dOtxt, b: s.dOimg, y: s.dO, batch: d.b, tokensA: d.l, tokensB: d.n, channels: d.c)
        let jc = d.jointRows * d.c
        zero(s.dQ, jc); zero(s.dK, jc); zero(s.dV, jc)
        Attention.backward(dout: s.dO, q: act.qj, k: act.kj, v: act.vj, probs: act.probs, dq: s.dQ, dk: s.dK,
                           dv: s.dV, scratch: s.attn, batch: d.b, tokens: d.t, heads: d.h, headDim: d.d)
        // The rotation is orthogonal: its transpose is the rotation by −θ, applied in place.
        Rotary.forward(x: s.dQ, cos: ws.rope.cos.data, sin: ws.rope.negSin.data, y: s.dQ,
                       batch: d.b, tokens: d.t, heads: d.h, headDim: d.d)
        Rotary.forward(x: s.dK, cos: ws.rope.cos.data, sin: ws.rope.negSin.data, y: s.dK,
                       batch: d.b, tokens: d.t, heads: d.h, headDim: d.d)
        TokenSplit.forward(x: s.dV, a: nil, b: s.dVs, batch: d.b, tokensA: d.l, tokensB: d.n, channels: d.c)
        preAttentionBackward(image(w), act.img, grads: gi, x: img, dR: s.dImg, dmod: s.dmodImg, tokens: d.n,
                             offset: d.l, pass: p)
        TokenSplit.forward(x: s.dV, a: s.dVs, b: nil, batch: d.b, tokensA: d.l, tokensB: d.n, channels: d.c)
        preAttentionBackward(text(w), act.txt, grads: gt, x: txt, dR: s.dTxt, dmod: s.dmodTxt, tokens: d.l,
                             offset: 0, pass: p)
    }

    /// Backward of `postAttention`: dR (the output gradient) becomes the gradient of x after the
    /// attention residual's own contribution is added; the attention-output gradient goes to `dO`.
    static func postAttentionBackward(_ s: StreamWeights, _ a: FluxDoubleBlockActivations.Stream,
                                      dR: UnsafeMutablePointer<Float>, dO: UnsafeMutablePointer<Float>,
                                      dmod: UnsafeMutablePointer<Float>, tokens n: Int, pass p: FluxPass) {
        let d = p.dims, c = d.c, r = d.b * n, sc = p.ws.scratch!, cg = p.conditioningGrads
        zero(sc.dF2, r * c)
        GatedResidual.backward(dy: dR, h: a.f2, gate: a.mod + 5 * c, dx: nil, dh: sc.dF2, dGate: cg ? dmod + 5 * c : nil,
                               batch: d.b, tokens: n, channels: c, gateStride: 6 * c)
        p.linearBackward(s.ff2, dy: sc.dF2, x: a.g1, dx: sc.dG1, rows: r, overwrite: true)
        zero(sc.dF1, r * d.m)
        GELU.backward(dy: sc.dG1, x: a.f1, dx: sc.dF1, count: r * d.m, approximation: .tanh)
        p.linearBackward(s.ff0, dy: sc.dF1, x: a.h2, dx: sc.dH2, rows: r, overwrite: true)
        zero(sc.dLn2, r * c)
        Modulate.backward(dy: sc.dH2, x: a.ln2, scale: a.mod + 4 * c, dx: sc.dLn2, dScale: cg ? dmod + 4 * c : nil,
                          dShift: cg ? dmod + 3 * c : nil, batch: d.b, tokens: n, channels: c, modStride: 6 * c)
        LayerNorm.backward(dy: sc.dLn2, x: a.x1, weight: nil, mean: a.mean2, rstd: a.rstd2, dx: dR, dWeight: nil,
                           dBias: nil, rows: r, channels: c)
        zero(sc.dA, r * c)
        GatedResidual.backward(dy: dR, h: a.a, gate: a.mod + 2 * c, dx: nil, dh: sc.dA, dGate: cg ? dmod + 2 * c : nil,
                               batch: d.b, tokens: n, channels: c, gateStride: 6 * c)
        p.linearBackward(s.out, dy: sc.dA, x: a.o, dx: dO, rows: r, overwrite: true)
    }

    /// Backward of `preAttention` given the joint q, k gradients in `scratch.dQ/dK` (rotation undone;
    /// this stream's rows start at `offset` in each sample) and its v gradient in `scratch.dVs`; adds the
    /// input gradient to dR.
    static func preAttentionBackward(_ s: StreamWeights, _ a: FluxDoubleBlockActivations.Stream, grads g: StreamWeights?,
                                     x: UnsafePointer<Float>, dR: UnsafeMutablePointer<Float>,
                                     dmod: UnsafeMutablePointer<Float>, tokens n: Int, offset: Int, pass p: FluxPass) {
        let d = p.dims, c = d.c, r = d.b * n, sc = p.ws.scratch!, cg = p.conditioningGrads
        func rmsBackward(_ dJoint: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ w: Tensor, _ rstd: UnsafePointer<Float>,
                         _ dw: Tensor?) {
            zero(sc.dq, r * c)
            for i in 0..<d.b {
                let own = i * n * c, joint = (i * d.t + offset) * c
                RMSNorm.backward(dy: dJoint + joint, x: x + own, weight: w.data, rstd: rstd + i * n * d.h, dx: sc.dq + own,
                                 dWeight: dw?.data, rows: n * d.h, channels: d.d)
            }
        }
        rmsBackward(sc.dQ, a.q, s.normQ, a.rq, g?.normQ)
        p.linearBackward(s.q, dy: sc.dq, x: a.h1, dx: sc.dH1, rows: r, overwrite: true)
        rmsBackward(sc.dK, a.k, s.normK, a.rk, g?.normK)
        p.linearBackward(s.k, dy: sc.dq, x: a.h1, dx: sc.dH1, rows: r)
        p.linearBackward(s.v, dy: sc.dVs, x: a.h1, dx: sc.dH1, rows: r)
        zero(sc.dLn1, r * c)
        Modulate.backward(dy: sc.dH1, x: a.ln1, scale: a.mod + c, dx: sc.dLn1, dScale: cg ? dmod + c : nil,
                          dShift: cg ? dmod : nil, batch: d.b, tokens: n, channels: c, modStride: 6 * c)
        LayerNorm.backward(dy: sc.dLn1, x: x, weight: nil, mean: a.mean1, rstd: a.rstd1, dx: dR, dWeight: nil,
                           dBias: nil, rows: r, channels: c)
        if cg { p.linearBackward(s.norm, dy: dmod, x: p.ws.siluTemb, dx: sc.dSiluTemb, rows: d.b) }
    }
}
