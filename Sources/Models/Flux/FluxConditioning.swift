import Foundation
import Tensors

/// FLUX's conditioning vector `temb` (diffusers' `CombinedTimestep[Guidance]TextProjEmbeddings`),
/// forward and backward:
///     temb = MLP_t(sinusoid(1000·t)) [+ MLP_g(sinusoid(1000·g))] + MLP_p(pooled),   MLP = Linear, SiLU, Linear
/// and `silu(temb)`, the input of every adaLN projection.
enum FluxConditioning {
    /// Width of the sinusoidal timestep features.
    static let sinusoidDim = 256

    /// diffusers' `get_timestep_embedding(1000·v, 256, flip_sin_to_cos=True, downscale_freq_shift=0)`:
    /// `[cos(a_i), sin(a_i)]`, a_i = 1000·v·exp(−ln(10⁴)·i/128), in float32 like diffusers.
    static func sinusoid(_ v: Float, into out: UnsafeMutablePointer<Float>) {
        let half = sinusoidDim / 2
        let arg0 = v * 1000
        let k = Float(-Foundation.log(10000.0))
        for i in 0..<half {
            let freq = Foundation.exp(k * Float(i) / Float(half))
            let a = arg0 * freq
            out[i] = Foundation.cos(a)
            out[half + i] = Foundation.sin(a)
        }
    }

    static func forward(_ w: FluxWeights, timesteps: [Float], guidance: [Float]?, pooled: UnsafePointer<Float>,
                        pass p: FluxPass) {
        let ws = p.ws, b = p.dims.b, c = p.dims.c, s = sinusoidDim
        for i in 0..<b { sinusoid(timesteps[i], into: ws.tsin + i * s) }
        p.linear(w.timeLinear1, ws.tsin, ws.tHidden, rows: b)
        SiLU.forward(x: ws.tHidden, y: ws.tAct, count: b * c)
        p.linear(w.timeLinear2, ws.tAct, ws.temb, rows: b)
        if let g1 = w.guidanceLinear1, let g2 = w.guidanceLinear2, let guidance {
            for i in 0..<b { sinusoid(guidance[i], into: ws.gsin + i * s) }
            p.linear(g1, ws.gsin, ws.gHidden, rows: b)
            SiLU.forward(x: ws.gHidden, y: ws.gAct, count: b * c)
            p.linear(g2, ws.gAct, ws.part, rows: b)
            Residual.forward(a: ws.temb, b: ws.part, y: ws.temb, count: b * c)
        }
        p.linear(w.textLinear1, pooled, ws.pHidden, rows: b)
        SiLU.forward(x: ws.pHidden, y: ws.pAct, count: b * c)
        p.linear(w.textLinear2, ws.pAct, ws.part, rows: b)
        Residual.forward(a: ws.temb, b: ws.part, y: ws.temb, count: b * c)
        SiLU.forward(x: ws.temb, y: ws.siluTemb, count: b * c)
    }

    /// From `scratch.dSiluTemb` (the gradient of silu(temb), gathered from every adaLN projection) to
    /// the embedders' weights and, if `dPooled` is given, the pooled text vector (accumulated).
    static func backward(_ w: FluxWeights, pooled: UnsafePointer<Float>, dPooled: UnsafeMutablePointer<Float>?,
                         pass p: FluxPass) {
        let ws = p.ws, s = ws.scratch!, b = p.dims.b, c = p.dims.c
        zero(s.dTemb, b * c)
        SiLU.backward(dy: s.dSiluTemb, x: ws.temb, dx: s.dTemb, count: b * c)
        func mlp(_ l1: FluxLinearWeights, _ l2: FluxLinearWeights, input: UnsafePointer<Float>,
                 hidden: UnsafePointer<Float>, act: UnsafePointer<Float>, dInput: UnsafeMutablePointer<Float>?) {
            zero(s.dHid, b * c)
            p.linearBackward(l2, dy: s.dTemb, x: act, dx: s.dHid, rows: b)
            zero(s.dHid2, b * c)
            SiLU.backward(dy: s.dHid, x: hidden, dx: s.dHid2, count: b * c)
            p.linearBackward(l1, dy: s.dHid2, x: input, dx: dInput, rows: b)
        }
        mlp(w.timeLinear1, w.timeLinear2, input: ws.tsin, hidden: ws.tHidden, act: ws.tAct, dInput: nil)
        if let g1 = w.guidanceLinear1, let g2 = w.guidanceLinear2, ws.lastGuidance {
            mlp(g1, g2, input: ws.gsin, hidden: ws.gHidden, act: ws.gAct, dInput: nil)
        }
        mlp(w.textLinear1, w.textLinear2, input: pooled, hidden: ws.pHidden, act: ws.pAct, dInput: dPooled)
    }
}
