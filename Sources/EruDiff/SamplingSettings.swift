import Diffusion

/// How images are drawn from a flow model: the number of steps, classifier-free guidance, the sampler
/// (Euler ODE, or Flow-GRPO's SDE with a noise level for RL exploration), and whether the current
/// LoRA adapter is applied. The timestep shift comes from the model's `erudiff.json`.
public struct SamplingSettings: Codable, Equatable, Sendable {
    public var steps: Int
    /// Guidance scale w (nil or 1: no guidance, the conditional velocity alone).
    public var guidance: Float?
    /// SDE noise level a (nil: the deterministic ODE sampler).
    public var sdeNoise: Float?
    /// Whether the adapter (if any, and enabled) is applied.
    public var useAdapter: Bool

    public init(steps: Int = 20, guidance: Float? = 4, sdeNoise: Float? = nil, useAdapter: Bool = true) {
        self.steps = steps; self.guidance = guidance; self.sdeNoise = sdeNoise; self.useAdapter = useAdapter
    }

    /// The SDE noise level when sampler "sde" is asked for without one.
    public static let noiseLevel: Float = 0.7

    /// How a method reads its sampling: `steps` (named `stepsName`), `guidance`, `sampler`,
    /// `noiseLevel` and, with `adapter`, `adapter`.
    public static func specs(steps stepsName: String = "steps", adapter: Bool = true) -> [OptionSpec<SamplingSettings>] {
        [
            .int(stepsName, \.steps, 1...1000, "Sampler steps."),
            .number("guidance", \.guidance, 0...100, nullable: false, "Classifier-free guidance weight w (1: none)."),
            OptionSpec("sampler", .choice(["ode", "sde"]), "Euler ODE, or Flow-GRPO's SDE (with noiseLevel) for exploration.",
                       get: { .string($0.sdeNoise == nil ? "ode" : "sde") },
                       set: { s, v in s.sdeNoise = v.string == "ode" ? nil : s.sdeNoise ?? noiseLevel }),
            OptionSpec("noiseLevel", .number(0...10), "SDE noise level a (sampler sde only).",
                       get: { .number(OptionSpec<SamplingSettings>.decimal($0.sdeNoise ?? noiseLevel)) },
                       set: { s, v in
                           guard s.sdeNoise != nil else { throw OptionError(#"given with sampler "sde" only"#) }
                           s.sdeNoise = Float(v.number!)
                       }),
        ] + (adapter ? [.bool("adapter", \.useAdapter, "Apply the model's adapter (false: the frozen base model).")] : [])
    }

    /// The sampler method these settings name.
    public var method: FlowSampler.Method { sdeNoise.map { .sde(noiseLevel: $0) } ?? .ode }

    /// Throws naming the first setting out of range.
    public func validate(_ what: String = "sampling") throws {
        try Self.specs().check(self, what)
    }
}
