import Tensors

/// FLUX's single-stream block (`FluxSingleTransformerBlock`), forward and backward, over the joint
/// sequence x `[B·(L+N), C]`:
///     mod = Linear(silu(temb))                        shift, scale, gate
///     h   = LN(x)·(1 + scale) + shift
///     o   = Attention(RoPE(RMSNorm(q(h))), RoPE(RMSNorm(k(h))), v(h))
///     out = x + gate·proj_out([o | GELU(proj_mlp(h))])
enum FluxSingleBlock {
    static func forward(_ w: FluxSingleBlockWeights, _ a: FluxSingleBlockActivations, x: UnsafePointer<Float>,
                        pass p: FluxPass) {
        let d = p.dims, c = d.c, j = d.jointRows, ws = p.ws
        p.linear(w.norm, ws.siluTemb, a.mod, rows: d.b)
        LayerNorm.forward(x: x, weight: nil, bias: nil, y: a.ln, mean: a.mean, rstd: a.rstd, rows: j, channels: c,
                          eps: 1e-6)
        Modulate.forward(x: a.ln, scale: a.mod + c, shift: a.mod, y: a.h, batch: d.b, tokens: d.t, channels: c,
                         modStride: 3 * c)
        p.linear(w.toQ, a.h, a.q, rows: j)
        p.linear(w.toK, a.h, a.k, rows: j)
        p.linear(w.toV, a.h, a.vj, rows: j)
        RMSNorm.forward(x: a.q, weight: w.normQ.data, y: a.qj, rstd: a.rq, rows: j * d.h, channels: d.d, eps: 1e-6)
        RMSNorm.forward(x: a.k, weight: w.normK.data, y: a.kj, rstd: a.rk, rows: j * d.h, channels: d.d, eps: 1e-6)
        Rotary.forward(x: a.qj, cos: ws.rope.cos.data, sin: ws.rope.sin.data, y: a.qj, batch: d.b, tokens: d.t,
                       heads: d.h, headDim: d.d)
        Rotary.forward(x: a.kj, cos: ws.rope.cos.data, sin: ws.rope.sin.data, y: a.kj, batch: d.b, tokens: d.t,
                       heads: d.h, headDim: d.d)
        Attention.forward(q: a.qj, k: a.kj, v: a.vj, mask: nil, out: a.o, probs: a.probs, batch: d.b, tokens: d.t,
                          heads: d.h, headDim: d.d)
        p.linear(w.projMLP, a.h, a.mlp, rows: j)
        GELU.forward(x: a.mlp, y: a.act, count: j * d.m, approximation: .tanh)
        FluxConcatLinear.forward(w.projOut, x1: a.o, k1: c, x2: a.act, k2: d.m, y: a.p, rows: j, pass: p)
        GatedResidual.forward(x: x, gate: a.mod + 2 * c, h: a.p, y: a.out, batch: d.b, tokens: d.t, channels: c,
                              gateStride: 3 * c)
    }

    /// On entry `scratch.dJoint` holds the gradient of the block output; on return that of its input x.
    static func backward(_ w: FluxSingleBlockWeights, _ a: FluxSingleBlockActivations, grads g: FluxSingleBlockWeights?,
                         x: UnsafePointer<Float>, pass p: FluxPass) {
        let d = p.dims, c = d.c, j = d.jointRows, ws = p.ws, s = ws.scratch!, cg = p.conditioningGrads
        let dR = s.dJoint, dmod = s.dmodImg
        if cg { zero(dmod, d.b * 3 * c) }
        zero(s.dA, j * c)
        GatedResidual.backward(dy: dR, h: a.p, gate: a.mod + 2 * c, dx: nil, dh: s.dA, dGate: cg ? dmod + 2 * c : nil,
                               batch: d.b, tokens: d.t, channels: c, gateStride: 3 * c)
        FluxConcatLinear.backward(w.projOut, dy: s.dA, x1: a.o, k1: c, x2: a.act, k2: d.m, dx1: s.dO, dx2: s.dG1,
                                  rows: j, overwrite: true, pass: p)
        zero(s.dF1, j * d.m)
        GELU.backward(dy: s.dG1, x: a.mlp, dx: s.dF1, count: j * d.m, approximation: .tanh)
        p.linearBackward(w.projMLP, dy: s.dF1, x: a.h, dx: s.dH1, rows: j, overwrite: true)
        zero(s.dQ, j * c); zero(s.dK, j * c); zero(s.dV, j * c)
        Attention.backward(dout: s.dO, q: a.qj, k: a.kj, v: a.vj, probs: a.probs, dq: s.dQ, dk: s.dK, dv: s.dV,
                           scratch: s.attn, batch: d.b, tokens: d.t, heads: d.h, headDim: d.d)
        Rotary.forward(x: s.dQ, cos: ws.rope.cos.data, sin: ws.rope.negSin.data, y: s.dQ, batch: d.b, tokens: d.t,
                       heads: d.h, headDim: d.d)
        Rotary.forward(x: s.dK, cos: ws.rope.cos.data, sin: ws.rope.negSin.data, y: s.dK, batch: d.b, tokens: d.t,
                       heads: d.h, headDim: d.d)
        zero(s.dq, j * c)
        RMSNorm.backward(dy: s.dQ, x: a.q, weight: w.normQ.data, rstd: a.rq, dx: s.dq, dWeight: g?.normQ.data,
                         rows: j * d.h, channels: d.d)
        p.linearBackward(w.toQ, dy: s.dq, x: a.h, dx: s.dH1, rows: j)
        zero(s.dq, j * c)
        RMSNorm.backward(dy: s.dK, x: a.k, weight: w.normK.data, rstd: a.rk, dx: s.dq, dWeight: g?.normK.data,
                         rows: j * d.h, channels: d.d)
        p.linearBackward(w.toK, dy: s.dq, x: a.h, dx: s.dH1, rows: j)
        p.linearBackward(w.toV, dy: s.dV, x: a.h, dx: s.dH1, rows: j)
        zero(s.dLn1, j * c)
        Modulate.backward(dy: s.dH1, x: a.ln, scale: a.mod + c, dx: s.dLn1, dScale: cg ? dmod + c : nil,
                          dShift: cg ? dmod : nil, batch: d.b, tokens: d.t, channels: c, modStride: 3 * c)
        LayerNorm.backward(dy: s.dLn1, x: x, weight: nil, mean: a.mean, rstd: a.rstd, dx: dR, dWeight: nil, dBias: nil,
                           rows: j, channels: c)
        if cg { p.linearBackward(w.norm, dy: dmod, x: ws.siluTemb, dx: s.dSiluTemb, rows: d.b) }
    }
}
