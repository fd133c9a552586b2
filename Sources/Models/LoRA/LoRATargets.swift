/// Which linear layers of a FLUX transformer carry LoRA adapters by default: every attention and MLP
/// projection of both block kinds (not the adaLN modulations, embedders or the final projection).
public enum LoRATargets {
    /// Module-name endings of the targets inside a block.
    public static let blockSuffixes = [
        "attn.to_q", "attn.to_k", "attn.to_v", "attn.to_out.0",
        "attn.add_q_proj", "attn.add_k_proj", "attn.add_v_proj", "attn.to_add_out",
        "ff.net.0.proj", "ff.net.2", "ff_context.net.0.proj", "ff_context.net.2",
        "proj_mlp", "proj_out",
    ]

    /// Whether the module called `name` is a default target.
    public static func isDefault(_ name: String) -> Bool {
        guard name.hasPrefix("transformer_blocks.") || name.hasPrefix("single_transformer_blocks.") else { return false }
        return blockSuffixes.contains { name.hasSuffix("." + $0) }
    }
}
