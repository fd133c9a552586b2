import Models
import Tensors

/// The LoRA adapter a procedure creates when the model has none (or when asked for a fresh one):
/// rank r, scale alpha/r, PEFT's init from `seed`, on the default targets (every attention and MLP
/// projection) unless `targets` names others or `allLayers` asks for every linear layer.
public struct LoRASettings: Codable, Equatable, Sendable {
    public var rank: Int
    public var alpha: Float
    public var seed: UInt64
    public var targets: [String]?
    /// Every linear layer (`allTargets`), the path by which the pooled prompt vector conditions the
    /// whole model included.
    public var allLayers: Bool

    public init(rank: Int = 16, alpha: Float = 16, seed: UInt64 = 1, targets: [String]? = nil, allLayers: Bool = true) {
        self.rank = rank; self.alpha = alpha; self.seed = seed; self.targets = targets; self.allLayers = allLayers
    }

    private enum CodingKeys: String, CodingKey { case rank, alpha, seed, targets, allLayers }

    /// Decodes, with `allLayers` false when absent.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(rank: try c.decode(Int.self, forKey: .rank), alpha: try c.decode(Float.self, forKey: .alpha),
                  seed: try c.decode(UInt64.self, forKey: .seed), targets: try c.decodeIfPresent([String].self, forKey: .targets),
                  allLayers: try c.decodeIfPresent(Bool.self, forKey: .allLayers) ?? false)
    }

    /// The doc of a method's `lora` option.
    public static let doc = "Adapter shape, used when the model has no adapter or with freshAdapter (another shape without it is an error)."

    /// `lora: {rank, alpha, seed, targets}`, the shape of an adapter a method creates.
    public static let specs: [OptionSpec<LoRASettings>] = [
        .int("rank", \.rank, 1...1024, "Rank r."),
        .number("alpha", \.alpha, 1e-6...1e6, "Scale numerator: the update is (alpha / r)·B·A."),
        .seed(\.seed, "Seed of PEFT's init of A (B starts at zero)."),
        OptionSpec("targets", .names(["default", "all"]),
                   "\"default\" (attention and MLP projections), \"all\" (every linear layer, also the adaLN modulations and the timestep and pooled-text embedders) or a list of module names.",
                   get: { $0.allLayers ? .string("all") : $0.targets.map { .strings($0) } ?? .string("default") },
                   set: { s, v in s.allLayers = v.string == "all"; s.targets = v.string == nil ? v.strings : nil }),
    ]

    /// The target list for a model of `config` (nil: the default targets).
    public func resolvedTargets(_ config: FluxConfig) -> [String]? {
        allLayers ? Self.allTargets(config) : targets
    }

    /// Every linear layer of a model of `config` (embedders, adaLN modulations and the output
    /// projection too): adapters that can also move the pooled-text and timestep conditioning path.
    public static func allTargets(_ config: FluxConfig) -> [String] {
        FluxWeights.linearLayout(config).map(\.name)
    }

    /// Whether backward must carry gradients into the conditioning vector for `adapter`: when it has
    /// targets on the adaLN modulations or the timestep / pooled-text embedders, which an adapter-only
    /// backward otherwise skips.
    static func needsConditioningGradients(_ adapter: LoRAAdapter) -> Bool {
        adapter.modules.contains { m in
            m.hasPrefix("time_text_embed.") || m.hasSuffix("norm1.linear") || m.hasSuffix("norm1_context.linear")
                || m.hasSuffix(".norm.linear") || m == "norm_out.linear"
        }
    }

    /// The model's adapter, created first when it has none or when `fresh`; left enabled.
    func adapter(on model: FlowModel, fresh: Bool) throws -> LoRAAdapter {
        let a = try (fresh ? nil : model.adapter)
            ?? model.createAdapter(rank: rank, alpha: alpha, targets: resolvedTargets(model.transformer.config), seed: seed)
        a.enabled = true
        return a
    }
}
