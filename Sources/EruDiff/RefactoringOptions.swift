import Foundation
import World

/// The settings of the refactoring job (`erudiff-train refactor`): baseline evaluation → DK-DM →
/// NO-RL → evaluation, with an optional ablation (DK-DM only, NO-RL only). Read from a study
/// (`RefactoringStudy`), the file that `scripts/demo` sends to the daemon; the study's settings and the
/// experiments behind them: docs/decisions.md, "Defaults chosen by experiment".
public struct RefactoringOptions: Codable, Equatable, Sendable {
    public var evaluation = EvaluationOptions()
    /// How the evaluations' dislocation anchors are sampled (one bank with DK-DM's when equal).
    public var evaluationAnchors = AnchorBank.Settings()
    /// Also evaluate between DK-DM and NO-RL.
    public var evaluateAfterDKDM = false
    public var dkdm = DistributionMatchingOptions()
    /// A second DK-DM run on the first one's adapter, typically on the policy's own samples (nil: none).
    public var dkdmOnPolicy: DistributionMatchingOptions? = nil
    public var norl = NegativeOnlyRLOptions()
    /// The knowledge set whose pairs DK-DM trains on.
    public var dkdmSet = "world:train"
    /// The knowledge set whose prompts NO-RL samples, and which of each item's prompts.
    public var rlSet = "world:train"
    public var rlKinds = RLPrompt.defaultKinds
    /// Random explicit captions added to NO-RL's prompts (drawn from NO-RL's seed).
    public var rlCaptions = 0
    public var grid = Grid()
    /// Also evaluate after DK-DM alone, and run NO-RL alone from the base model and evaluate it.
    public var ablation = false
    /// Seconds between automatic checkpoints (stage ends are always checkpointed).
    public var checkpointSeconds: Double = 60

    public init() {}

    /// The before/after image grids: per family, the first train items and the first held-out
    /// (test-concept) items, sampled with seeds seed, seed + 1, … down the rows.
    public struct Grid: Codable, Equatable, Sendable {
        public var trainRowsPerFamily = 6
        public var heldOutRowsPerFamily = 2
        public var steps = SamplingSettings().steps
        public var guidance: Float = SamplingSettings().guidance ?? 4
        public var seed: UInt64 = 7
        public var scale = 3
        public init() {}

        static let specs: [OptionSpec<Grid>] = [
            .int("trainRowsPerFamily", \.trainRowsPerFamily, 0...64, "Train items per family."),
            .int("heldOutRowsPerFamily", \.heldOutRowsPerFamily, 0...64, "Held-out (test-concept) items per family."),
            .int("steps", \.steps, 1...1000, "Sampler steps."),
            .number("guidance", \.guidance, 0...100, "Guidance weight."),
            .seed(\.seed, "Seed of the first row."),
            .int("scale", \.scale, 1...16, "Pixels per image pixel."),
        ]
    }

    public func validate() throws {
        try evaluation.validate()
        try dkdm.validate()
        try dkdmOnPolicy?.validate()
        try norl.validate()
        try RefactoringStudy.specs.check(RefactoringStudy(options: self), "study")
        guard checkpointSeconds > 0 else { throw EruDiffError.invalidArgument("checkpointSeconds must be positive") }
    }
}

/// The main job's one definition: a JSON object whose sections are the params `scripts/demo` sends to
/// the daemon's methods (`evaluate`, `matchDistributions`, optionally `matchDistributionsOnPolicy`,
/// `rlStep`; `grid` for its `sample` calls) and which `erudiff-train refactor` reads into
/// `RefactoringOptions` with the same option tables, so both run the same study (scripts/demo.json).
public struct RefactoringStudy {
    public var options = RefactoringOptions()
    /// Compute threads (the daemon's `--threads`).
    public var threads: Int? = nil
    public var description = ""

    public init(options: RefactoringOptions = RefactoringOptions()) { self.options = options }

    /// Reads a study file; its options are validated.
    public init(contentsOf url: URL) throws {
        let object: Any
        do { object = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) } catch {
            throw EruDiffError.invalidArgument("study \(url.path): \(error.localizedDescription)")
        }
        guard let o = object as? [String: Any] else { throw EruDiffError.invalidArgument("study \(url.path): not a JSON object") }
        do {
            try Self.specs.read(into: &self, from: OptionSource(o))
            try options.validate()
        } catch let EruDiffError.invalidArgument(m) { throw EruDiffError.invalidArgument("study \(url.path): \(m)") }
    }

    /// The sections of a study and their options; the names outside the methods' own tables (`set`,
    /// `kinds`, `captions`) mean what the daemon reads them as.
    public static let specs: [OptionSpec<RefactoringStudy>] = [
        .text("description", \.description, "What the study is."),
        .int("threads", \.threads, 1...1024, "Compute threads."),
        .group("evaluate", EvaluationOptions.specs.map { $0.lifted(\.options.evaluation) } + [
            .group("anchors", AnchorBank.Settings.specs.map { $0.lifted(\.options.evaluationAnchors) }, "The dislocation's anchors."),
        ], "The evaluations: before training, after it, and after DK-DM with evaluateAfterDKDM."),
        .bool("evaluateAfterDKDM", \.options.evaluateAfterDKDM, "Also evaluate between DK-DM and NO-RL."),
        .group("matchDistributions", DistributionMatchingOptions.specs.map { $0.lifted(\.options.dkdm) } + [
            .choice("set", \.options.dkdmSet, KnowledgeBase.setNames, "The knowledge set whose pairs DK-DM trains on."),
        ], "DK-DM."),
        .group("matchDistributionsOnPolicy", \.options.dkdmOnPolicy, DistributionMatchingOptions.specs, fresh: DistributionMatchingOptions(),
               "A second DK-DM run on the first one's adapter and matchDistributions' set, typically with anchors.source \"policy\"."),
        .group("rlStep", NegativeOnlyRLOptions.specs.map { $0.lifted(\.options.norl) } + [
            .choice("set", \.options.rlSet, KnowledgeBase.setNames, "The knowledge set whose prompts NO-RL samples."),
            OptionSpec("kinds", .names([]), "Which prompts of each item: implicit, explicit.", get: { .strings($0.options.rlKinds.map(\.rawValue)) },
                       set: { s, v in s.options.rlKinds = (v.strings ?? []).compactMap(KnowledgeItem.PromptKind.init)
                           if s.options.rlKinds.count != v.strings?.count || s.options.rlKinds.contains(.superficial) { throw OptionError("implicit and/or explicit") } }),
            .int("captions", \.options.rlCaptions, 0...10_000, "Random explicit captions added to the prompts."),
        ], "NO-RL on DK-DM's adapter."),
        .group("grid", RefactoringOptions.Grid.specs.map { $0.lifted(\.options.grid) }, "The image grids."),
    ]
}
