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

    /// The sampler method these settings name.
    public var method: FlowSampler.Method { sdeNoise.map { .sde(noiseLevel: $0) } ?? .ode }

    /// Throws naming the first setting out of range.
    public func validate(_ what: String = "sampling") throws {
        guard steps > 0 && steps <= 1000 else { throw EruDiffError.invalidArgument("\(what).steps must be in 1...1000, got \(steps)") }
        if let g = guidance, !(g.isFinite && g >= 0 && g <= 100) {
            throw EruDiffError.invalidArgument("\(what).guidance must be in [0, 100], got \(g)")
        }
        if let a = sdeNoise, !(a.isFinite && a >= 0 && a <= 10) {
            throw EruDiffError.invalidArgument("\(what).sdeNoise must be in [0, 10], got \(a)")
        }
    }
}
