import Tensors

extension FluxWeights {
    /// Fresh weights for training from scratch, DiT-style, drawn from `RNG(seed:)`:
    /// - linear layers Xavier-uniform, biases zero;
    /// - the timestep / guidance embedder MLPs N(0, 0.02²);
    /// - every adaLN modulation projection (`norm1*.linear`, `norm.linear`, `norm_out.linear`) and the
    ///   final `proj_out` zero, so each block starts as the identity and the output as zero
    ///   ("adaLN-Zero");
    /// - RMSNorm weights one.
    public static func random(config: FluxConfig, seed: UInt64) -> FluxWeights {
        let w = FluxWeights.zeros(config)
        var rng = RNG(seed: seed)
        for l in w.linears {
            let n = l.name
            if n.hasSuffix("norm1.linear") || n.hasSuffix("norm1_context.linear") || n.hasSuffix(".norm.linear")
                || n == "norm_out.linear" || n == "proj_out" {
                continue  // zero
            }
            if n.hasPrefix("time_text_embed.timestep_embedder") || n.hasPrefix("time_text_embed.guidance_embedder") {
                rng.fillNormal(l.weight.data, count: l.weight.count, std: 0.02)
            } else {
                let bound = (6 / Float(l.inFeatures + l.outFeatures)).squareRoot()
                rng.fillUniform(l.weight.data, count: l.weight.count, lo: -bound, hi: bound)
            }
        }
        for (name, t) in w.tensors where name.hasSuffix("norm_q.weight") || name.hasSuffix("norm_k.weight")
            || name.hasSuffix("norm_added_q.weight") || name.hasSuffix("norm_added_k.weight") {
            t.data.update(repeating: 1, count: t.count)
        }
        return w
    }
}
