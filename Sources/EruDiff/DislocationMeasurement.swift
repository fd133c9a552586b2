import Diffusion
import Foundation
import Models
import Tensors

/// Knowledge dislocation (DESIGN §4.2) on the anchor path:
///
///     D(c_i, c_e) = E_{t, x_t} ‖v(x_t, t, c_i) − v(x_t, t, c_e)‖² / E_{t, x_t} ‖v(x_t, t, c_e)‖²,
///     x_t = (1 − t)·x0 + t·ε,  x0 an anchor of c_e (reference sample), ε ~ N(0, I)
///
/// with M samples per pair: t stratified (t_j = (j + u_j)/M), anchor j mod K, and every draw from a
/// seed of (settings seed, pair prompts, j) — so measurements before and after training see the same
/// x_t and are comparable. The velocities are those of the model as it is (adapter on if enabled and
/// `useAdapter`); both expectations are sums over the same samples. 0 means the implicit prompt drives
/// the model exactly as its explicit anchor does.
public final class DislocationMeasurement: Procedure {
    public struct Settings: Codable, Equatable, Sendable {
        public var samplesPerPair: Int
        public var anchors: Int
        public var seed: UInt64
        public init(samplesPerPair: Int = 8, anchors: Int = 2, seed: UInt64 = 0xD15) {
            self.samplesPerPair = samplesPerPair; self.anchors = anchors; self.seed = seed
        }

        /// `dislocation: {samplesPerPair, anchors, seed}` of `matchDistributions` and `evaluate`.
        public static let specs: [OptionSpec<Settings>] = [
            .int("samplesPerPair", \.samplesPerPair, 1...1024, "Samples (t, x_t) per pair."),
            .int("anchors", \.anchors, 1...256, "Anchors per pair the samples are spread over."),
            .seed(\.seed, "Seed of the samples: measurements before and after training see the same x_t."),
        ]
    }

    public let model: FlowModel
    public let pairs: [KnowledgePair]
    public let settings: Settings
    public let bank: AnchorBank
    public let useAdapter: Bool
    /// Rows per forward pass (two per sample; `model.maxInferenceRows` by default).
    public let chunkRows: Int

    private var fill: AnchorFill?
    private var checkedAnchors = false
    private var nextSample = 0
    private var numerator: [Double]
    private var denominator: [Double]
    private var report: DislocationReport?
    private let xt: Tensor
    private let noise: Tensor

    public init(model: FlowModel, pairs: [KnowledgePair], bank: AnchorBank, settings: Settings = Settings(),
                useAdapter: Bool = true, chunkRows: Int? = nil) throws {
        try KnowledgePair.validate(pairs)
        try Settings.specs.check(settings, "dislocation")
        self.model = model
        self.pairs = pairs
        self.settings = settings
        self.bank = bank
        self.useAdapter = useAdapter
        self.chunkRows = max(2, (chunkRows ?? model.maxInferenceRows) / 2 * 2)
        numerator = [Double](repeating: 0, count: pairs.count)
        denominator = numerator
        let per = model.packing.tokens * model.packing.tokenChannels
        xt = Tensor(zeros: [self.chunkRows, model.packing.tokens, model.packing.tokenChannels])
        noise = Tensor(zeros: [per])
    }

    private var totalSamples: Int { pairs.count * settings.samplesPerPair }
    private var samplesPerChunk: Int { chunkRows / 2 }
    public var isFinished: Bool { report != nil }
    public var output: DislocationReport? { report }

    public func next() throws -> ProcedureProgress? {
        guard report == nil else { return nil }
        if !checkedAnchors {
            fill = try bank.fill(model: model, prompts: pairs.map(\.explicit), count: settings.anchors)
            checkedAnchors = true
        }
        if let f = fill {
            var p = try f.next()!
            if f.isFinished { fill = nil }
            p.fraction *= 0.5
            return p
        }
        try measureChunk()
        let chunks = (totalSamples + samplesPerChunk - 1) / samplesPerChunk
        let done = (nextSample + samplesPerChunk - 1) / samplesPerChunk
        if nextSample >= totalSamples { finish() }
        return ProcedureProgress(stage: "dislocation", done: done, total: chunks,
                                 fraction: Double(nextSample) / Double(totalSamples))
    }

    private func measureChunk() throws {
        let pk = model.packing, per = pk.tokens * pk.tokenChannels, m = settings.samplesPerPair
        let start = nextSample, end = min(totalSamples, start + samplesPerChunk), n = end - start
        var prompts: [String] = []
        prompts.reserveCapacity(2 * n)
        var times = [Float](repeating: 0, count: 2 * n)
        for s in start..<end {
            let p = pairs[s / m], j = s % m, row = s - start
            var rng = RNG(seed: SeedHash.seed(settings.seed, p.implicit + "\u{1F}" + p.explicit, j))
            let t = min(max((Float(j) + rng.uniform()) / Float(m), 1e-3), 1 - 1e-3)
            rng.fillNormal(noise.data, count: per)
            guard let x0 = bank.anchor(p.explicit, j % settings.anchors) else {
                throw EruDiffError.invalidArgument("no anchor \(j % settings.anchors) for '\(p.explicit)'")
            }
            FlowMatching.noisy(x0: x0.data, noise: noise.data, t: t, into: xt.data + row * per, count: per)
            (xt.data + (n + row) * per).update(from: xt.data + row * per, count: per)
            times[row] = t; times[n + row] = t
            prompts.append(p.implicit)
        }
        for s in start..<end { prompts.append(pairs[s / m].explicit) }
        let text = try model.encode(prompts)
        let c = model.transformer.config
        let input = FluxInput(image: xt.prefixView([2 * n, pk.tokens, pk.tokenChannels]), text: text.states,
                              pooled: text.pooled, timesteps: times,
                              guidance: c.guidanceEmbeds ? [Float](repeating: 1, count: 2 * n) : nil)
        let out = try model.velocity(input, workspace: try model.inferenceWorkspace(rows: chunkRows),
                                                useAdapter: useAdapter)
        for s in start..<end {
            let row = s - start
            let vi = out.data + row * per, ve = out.data + (n + row) * per
            var num = 0.0, den = 0.0
            for k in 0..<per {
                let d = Double(vi[k] - ve[k])
                num += d * d
                den += Double(ve[k]) * Double(ve[k])
            }
            numerator[s / m] += num
            denominator[s / m] += den
        }
        nextSample = end
    }

    private func finish() {
        var perItem: [String: Double] = [:], splits: [String: String] = [:]
        for (i, p) in pairs.enumerated() {
            perItem[p.id] = numerator[i] / max(denominator[i], 1e-30)
            splits[p.id] = p.split
        }
        report = DislocationReport(perItem: perItem, splits: splits, samplesPerPair: settings.samplesPerPair)
    }
}
