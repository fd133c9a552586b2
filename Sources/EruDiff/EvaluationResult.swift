import World

/// What an evaluation measured: the knowledge metrics of §5 (per split, family, subdomain and item),
/// the explicit captions' score and accuracy, and the knowledge dislocation of the items' pairs.
public struct EvaluationResult: Codable, Equatable, Sendable {
    /// Knowledge items' metrics (nil when no knowledge set was evaluated).
    public var knowledge: KnowledgeReport?
    /// `world:explicit`: images of random explicit captions against what the captions state.
    public var explicit: PromptStats?
    public var dislocation: DislocationReport?
    public var samplesPerItem: Int
    public var sampling: SamplingSettings
    public var seed: UInt64
    /// Distinct images sampled (prompts shared by several items are sampled once).
    public var images: Int
    public var elapsedSeconds: Double

    /// Score of the implicit prompts over all items (the headline knowledge score), else of the
    /// explicit captions.
    public var score: Double? { knowledge?.overall.implicit?.score ?? explicit?.score }
    /// Strict accuracy of the same images.
    public var accuracy: Double? { knowledge?.overall.implicit?.accuracy ?? explicit?.accuracy }
    public var knowledgeGap: Double? { knowledge?.overall.knowledgeGap }

    /// The metrics of one split ("train", "test-paraphrase", "test-concept").
    public func split(_ name: String) -> GroupMetrics? { knowledge?.bySplit[name] }
}
