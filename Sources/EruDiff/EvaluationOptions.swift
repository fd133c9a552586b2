import World

/// The settings of an evaluation (DESIGN §4.4; the daemon's `evaluate` parameters).
public struct EvaluationOptions: Codable, Equatable, Sendable {
    // The options of the table below (`specs`) are documented there.
    public var sets = ["world:explicit", "world:train", "world:test-paraphrase", "world:test-concept"]
    public var explicitCount = 64
    public var samplesPerItem = 2
    public var sampling = SamplingSettings(steps: 16, guidance: 4)
    public var seed: UInt64 = 0
    public var dislocation: DislocationMeasurement.Settings? = DislocationMeasurement.Settings()
    /// Images per sampler run (nil: as many as the model's `maxInferenceRows` allows).
    public var chunk: Int? = nil
    /// Keep the sampled images (for grids); otherwise only the verifier's readings are kept.
    public var keepImages = false

    public init() {}

    public static let explicitSet = "world:explicit"

    public func validate() throws {
        try Self.specs.check(self, "evaluate")
    }

    /// The options of `evaluate` (DESIGN §4.4) but the prompts, each declared once (`OptionSpec`).
    public static let specs: [OptionSpec<Self>] = [
        OptionSpec("set", .names([explicitSet] + KnowledgeBase.setNames), "A set or a list: random explicit captions, or the knowledge base's sets.",
                   get: { $0.sets.isEmpty ? nil : .strings($0.sets) },
                   set: { o, v in o.sets = v.strings ?? [v.string!]; if !o.sets.allSatisfy(([explicitSet] + KnowledgeBase.setNames).contains) { throw OptionError("set names") } }),
        .int("samplesPerItem", \.samplesPerItem, 1...1000, "Images per prompt (each of an item's implicit, explicit and superficial prompts; each caption)."),
        .int("explicitCount", \.explicitCount, 1...100_000, "Random captions of world:explicit."),
    ] + SamplingSettings.specs().map { $0.lifted(\.sampling) } + [
        .seed(\.seed, "Seed of the evaluation: every caption and image follows from it, so two runs with the same seed agree exactly."),
        .group("dislocation", \.dislocation, DislocationMeasurement.Settings.specs, fresh: DislocationMeasurement.Settings(), orBool: true,
               component: "DislocationSettings", "Measure the items' knowledge dislocation."),
        .int("chunk", \.chunk, 1...1024, nullable: false, "Images per sampler run (what is drawn does not depend on it)."),
    ]
}
