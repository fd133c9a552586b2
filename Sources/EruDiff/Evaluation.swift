import Foundation
import Tensors
import World

/// Evaluation (DESIGN §4.4): samples `samplesPerItem` images for every prompt of the chosen sets — the
/// implicit, explicit and superficial prompt of each knowledge item, the random captions of
/// `world:explicit` — verifies them with the world verifier, and reports score, accuracy and knowledge
/// gap per split, family, subdomain and item (`KnowledgeMetrics`), plus the mean knowledge dislocation.
///
/// Deterministic: image j of prompt p is drawn from `SeedHash.seed(seed, p, j)`, so a prompt shared by
/// several items is sampled once, batches of any composition give the same images, and two runs with
/// the same seed agree exactly. Units: sampler steps of chunks of images, verification chunks, the
/// dislocation.
public final class Evaluation: Procedure {
    public typealias Options = EvaluationOptions

    public let model: FlowModel
    public let options: Options
    /// The knowledge items evaluated (in order, no duplicates).
    public let items: [KnowledgeItem]
    /// The `world:explicit` captions and what each states.
    public let captions: [(text: String, attributes: Attributes)]
    public let bank: AnchorBank

    private let requests: [BatchedSampling.Request]
    private var index: [String: Int] = [:]  // "j|prompt" → request
    private var sampling: BatchedSampling?
    /// What the verifier read from each requested image, in request order.
    private var readings: [(found: Attributes?, clean: Bool)] = []
    private var verified = 0
    private var dislocationRun: DislocationMeasurement?
    private var result: EvaluationResult?
    private var elapsed = 0.0
    private var tokens: Tensor?

    /// An evaluation of `options.sets` from `knowledge`, or of `items` (a caller's list in the
    /// knowledge-base format; `world:explicit` is still evaluated if listed in the sets).
    public init(model: FlowModel, knowledge: KnowledgeBase, options: Options = Options(), items: [KnowledgeItem]? = nil,
                bank: AnchorBank? = nil) throws {
        try options.validate()
        var chosen: [KnowledgeItem] = []
        if let items {
            chosen = items
        } else {
            for name in options.sets where name != Options.explicitSet { chosen += try knowledge.set(named: name) }  // names checked by validate()
        }
        var seen = Set<String>()
        chosen = chosen.filter { seen.insert($0.id).inserted }
        var caps: [(text: String, attributes: Attributes)] = []
        if options.sets.contains(Options.explicitSet) {
            var rng = RNG(seed: SeedHash.seed(options.seed, purpose: "eval.explicit"))
            for _ in 0..<options.explicitCount { caps.append(Caption.random(&rng)) }
        }
        guard !chosen.isEmpty || !caps.isEmpty else { throw EruDiffError.invalidArgument("evaluate: nothing to evaluate") }
        self.model = model
        self.options = options
        self.items = chosen
        self.captions = caps
        self.bank = bank ?? AnchorBank(model: model)
        var prompts: [String] = []
        for item in chosen { for kind in KnowledgeItem.PromptKind.allCases { prompts.append(item.prompt(kind)) } }
        prompts += caps.map(\.text)
        var req: [BatchedSampling.Request] = []
        var index: [String: Int] = [:]
        for p in prompts {
            for j in 0..<options.samplesPerItem where index["\(j)|" + p] == nil {
                index["\(j)|" + p] = req.count
                req.append(.init(prompt: p, seed: SeedHash.seed(options.seed, p, j)))
            }
        }
        self.requests = req
        self.index = index
    }

    public var isFinished: Bool { result != nil }
    public var output: EvaluationResult? { result }

    /// Units of sampling, verification and dislocation (the last estimated).
    private var verifyChunk: Int { 64 }

    public func next() throws -> ProcedureProgress? {
        guard result == nil else { return nil }
        let started = Date()
        defer { elapsed += Date().timeIntervalSince(started) }
        if tokens == nil {
            if sampling == nil {
                sampling = try BatchedSampling(model: model, requests: requests, settings: options.sampling, chunk: options.chunk)
            }
            let s = sampling!
            let p = try s.next()
            if s.isFinished { tokens = s.tokens; sampling = nil }
            return ProcedureProgress(stage: "sampling", done: p?.done ?? 0, total: p?.total ?? 0,
                                     fraction: 0.85 * (p?.fraction ?? 1))
        }
        if verified < requests.count {
            try verifyChunkOfImages()
            let chunks = (requests.count + verifyChunk - 1) / verifyChunk
            return ProcedureProgress(stage: "verifying", done: (verified + verifyChunk - 1) / verifyChunk, total: chunks,
                                     fraction: 0.85 + 0.05 * Double(verified) / Double(requests.count))
        }
        if let d = options.dislocation, !items.isEmpty {
            if dislocationRun == nil {
                dislocationRun = try DislocationMeasurement(model: model, pairs: items.map(KnowledgePair.init), bank: bank,
                                                            settings: d, useAdapter: options.sampling.useAdapter)
            }
            let run = dislocationRun!
            if !run.isFinished {
                var p = try run.next()!
                p.fraction = 0.9 + 0.1 * p.fraction
                if !run.isFinished { return p }
            }
        }
        finish(elapsedThisUnit: Date().timeIntervalSince(started))
        return ProcedureProgress(stage: "done", done: 1, total: 1, fraction: 1)
    }

    private func verifyChunkOfImages() throws {
        let pk = model.packing, per = pk.tokens * pk.tokenChannels
        let end = min(requests.count, verified + verifyChunk)
        let n = end - verified
        let slice = Tensor(borrowing: tokens!.data + verified * per, shape: [n, pk.tokens, pk.tokenChannels], owner: tokens!)
        let images = pk.unpack(slice)
        let verifier = Verifier()
        for i in 0..<n {
            let v = try verifier.verify(signedUnit: images.data + i * pk.pixelCount, width: pk.width, height: pk.height)
            readings.append((v.attributes, v.isClean))
        }
        verified = end
    }

    private func reading(_ prompt: String, _ j: Int) -> (found: Attributes?, clean: Bool) { readings[index["\(j)|" + prompt]!] }

    private func finish(elapsedThisUnit: Double) {
        var images: [VerifiedImage] = []
        for item in items {
            for kind in KnowledgeItem.PromptKind.allCases {
                for j in 0..<options.samplesPerItem {
                    let r = reading(item.prompt(kind), j)
                    images.append(VerifiedImage(item: item, prompt: kind, found: r.found, clean: r.clean))
                }
            }
        }
        let read = captions.flatMap { c in (0..<options.samplesPerItem).map { j in (reading(c.text, j), c.attributes) } }
        let explicit = KnowledgeMetrics.stats(readings: read.map { (found: $0.0.found, expected: $0.1) },
                                              clean: read.map(\.0.clean))
        if !options.keepImages { tokens = nil }
        result = EvaluationResult(knowledge: items.isEmpty ? nil : KnowledgeMetrics.report(images), explicit: explicit,
                                  dislocation: dislocationRun?.output, samplesPerItem: options.samplesPerItem,
                                  sampling: options.sampling, seed: options.seed, images: requests.count,
                                  elapsedSeconds: elapsed + elapsedThisUnit)
    }

    /// Image j of `prompt` as the evaluation sampled it (kept with `keepImages`).
    public func image(prompt: String, index j: Int = 0) -> RGBImage? {
        guard let tokens, let r = index["\(j)|" + prompt] else { return nil }
        let pk = model.packing, per = pk.tokens * pk.tokenChannels
        let one = Tensor(borrowing: tokens.data + r * per, shape: [1, pk.tokens, pk.tokenChannels], owner: tokens)
        return model.rgbImage(pk.unpack(one), index: 0)
    }
}
