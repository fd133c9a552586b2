import Diffusion
import Foundation
import Models
import Tensors

/// Samples many images — one per (prompt, seed) request — in chunks of `chunk` images, one sampler
/// step per unit. Anchors, evaluation and NO-RL's groups all come through here, so a long sampling job
/// reports progress and can be stopped between any two steps.
///
/// Image i depends only on its prompt, its seed and the settings (FlowSampler's per-image RNG), not
/// on which other requests share its chunk.
public final class BatchedSampling: Procedure {
    public struct Request: Equatable, Sendable {
        public var prompt: String
        public var seed: UInt64
        public init(prompt: String, seed: UInt64) { self.prompt = prompt; self.seed = seed }
    }

    public let model: FlowModel
    public let requests: [Request]
    public let settings: SamplingSettings
    /// Images per sampler run.
    public let chunk: Int
    /// Run before each unit and undone after it (NO-RL swaps in its sampling policy's adapter).
    var adapterOverride: LoRAAdapter?

    /// The sampled tokens `[n, N, C·p²]`, complete once finished.
    public let tokens: Tensor
    private var sampler: FlowSampler?
    private var nextRequest = 0
    private var chunkStart = 0
    private var unitsDone = 0

    /// `chunk` images per sampler run; nil: as many as `model.maxInferenceRows` allows.
    public init(model: FlowModel, requests: [Request], settings: SamplingSettings, chunk: Int? = nil) throws {
        try settings.validate()
        let chunk = chunk ?? model.samplingChunk(settings)
        guard chunk > 0 else { throw EruDiffError.invalidArgument("sampling chunk must be positive") }
        self.model = model
        self.requests = requests
        self.settings = settings
        self.chunk = chunk
        tokens = Tensor(zeros: [requests.count, model.packing.tokens, model.packing.tokenChannels])
    }

    /// Sampler steps in all.
    public var totalUnits: Int { (requests.count + chunk - 1) / chunk * settings.steps }
    public var isFinished: Bool { nextRequest >= requests.count && sampler == nil }
    public var output: Tensor? { isFinished ? tokens : nil }

    /// The images `[n, H, W, C]` once finished.
    public func images() -> Tensor? { isFinished ? model.packing.unpack(tokens) : nil }

    public func next() throws -> ProcedureProgress? {
        guard !isFinished else { return nil }
        let saved = model.transformer.adapter
        if let o = adapterOverride { model.transformer.adapter = o }
        defer { model.transformer.adapter = saved }
        if sampler == nil {
            let end = min(requests.count, nextRequest + chunk)
            let slice = requests[nextRequest..<end]
            sampler = try model.sampler(prompts: slice.map(\.prompt), seeds: slice.map(\.seed), settings: settings)
            chunkStart = nextRequest
            nextRequest = end
        }
        let s = sampler!
        _ = try s.next()
        unitsDone += 1
        if s.isFinished {
            let per = model.packing.tokens * model.packing.tokenChannels
            (tokens.data + chunkStart * per).update(from: s.tokens.data, count: s.seeds.count * per)
            sampler = nil
        }
        return ProcedureProgress(stage: "sampling", done: unitsDone, total: totalUnits,
                                 fraction: Double(unitsDone) / Double(max(totalUnits, 1)))
    }
}
