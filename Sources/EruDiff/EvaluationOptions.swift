/// The settings of an evaluation (DESIGN §4.4; the daemon's `evaluate` parameters).
public struct EvaluationOptions: Codable, Equatable, Sendable {
    /// Prompt sets: `world:explicit` (random explicit captions, scored against what they state) and
    /// the knowledge base's `world:train`, `world:test-paraphrase`, `world:test-concept`, `world:test`.
    public var sets = ["world:explicit", "world:train", "world:test-paraphrase", "world:test-concept"]
    /// Captions of `world:explicit`.
    public var explicitCount = 64
    /// Images per prompt (each of an item's implicit, explicit and superficial prompts; each caption).
    public var samplesPerItem = 2
    public var sampling = SamplingSettings(steps: 20, guidance: 4)
    /// Every draw (captions, sample seeds) follows from it: two runs with the same seed agree exactly.
    public var seed: UInt64 = 0
    /// The dislocation of the items' pairs (nil: not measured).
    public var dislocation: DislocationMeasurement.Settings? = DislocationMeasurement.Settings()
    /// Images per sampler run (nil: as many as the model's `maxInferenceRows` allows).
    public var chunk: Int? = nil
    /// Keep the sampled images (for grids); otherwise only the verifier's readings are kept.
    public var keepImages = false

    public init() {}

    public static let explicitSet = "world:explicit"

    public func validate() throws {
        func bad(_ s: String) -> EruDiffError { .invalidArgument("evaluate: " + s) }
        guard explicitCount > 0 && explicitCount <= 100_000 else { throw bad("explicitCount must be in 1...100000") }
        guard samplesPerItem > 0 && samplesPerItem <= 1000 else { throw bad("samplesPerItem must be in 1...1000") }
        if let chunk { guard chunk > 0 && chunk <= 1024 else { throw bad("chunk must be in 1...1024") } }
        try sampling.validate("sampling")
        if let d = dislocation { guard d.samplesPerPair > 0 && d.anchors > 0 else { throw bad("dislocation needs samples and anchors") } }
    }
}
