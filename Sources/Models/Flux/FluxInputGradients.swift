import Tensors

/// Gradients of a backward pass with respect to the transformer's inputs (first `batch` rows valid).
public final class FluxInputGradients {
    /// `[B, N, in_channels]`.
    public let image: Tensor
    /// `[B, L, joint_attention_dim]`.
    public let text: Tensor
    /// `[B, pooled_projection_dim]`.
    public let pooled: Tensor

    init(config: FluxConfig, batch: Int, textTokens: Int, imageTokens: Int) {
        image = Tensor(zeros: [batch, imageTokens, config.inChannels])
        text = Tensor(zeros: [batch, textTokens, config.jointAttentionDim])
        pooled = Tensor(zeros: [batch, config.pooledProjectionDim])
    }
}
