import Tensors

/// The inputs of one forward pass over a batch of B samples.
public struct FluxInput {
    /// Packed image tokens `[B, N, in_channels]` (x_t).
    public var image: Tensor
    /// Text states `[B, L, joint_attention_dim]` (pad positions zeroed).
    public var text: Tensor
    /// Pooled text vectors `[B, pooled_projection_dim]`.
    public var pooled: Tensor
    /// Flow time t ∈ [0, 1] per sample (diffusers multiplies it by 1000 inside).
    public var timesteps: [Float]
    /// Guidance scale per sample, only for configs with `guidance_embeds`.
    public var guidance: [Float]?

    public init(image: Tensor, text: Tensor, pooled: Tensor, timesteps: [Float], guidance: [Float]? = nil) {
        self.image = image; self.text = text; self.pooled = pooled; self.timesteps = timesteps; self.guidance = guidance
    }

    /// B, the number of samples (one timestep each).
    public var batch: Int { timesteps.count }
}
