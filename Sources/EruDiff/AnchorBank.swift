import Foundation
import Tensors

/// Anchor samples x0 ~ p_ref(· | c_e): images the reference model (adapter off, with guidance)
/// generates for explicit prompts, cached for a run (DESIGN §4.2 step 1).
///
/// Anchor j of prompt p is drawn from seed `SeedHash.seed(settings.seed, p, j)`, so a bank can be
/// filled in any order and extended later (2 anchors per prompt for the dislocation of every item,
/// 8 for the DK-DM pairs) and always holds the same images; DK-DM, the dislocation and evaluation
/// share one bank.
public final class AnchorBank {
    public struct Settings: Codable, Equatable, Sendable {
        /// How anchors are sampled (`useAdapter` is forced off: the reference model).
        public var sampling: SamplingSettings
        public var seed: UInt64
        public init(sampling: SamplingSettings = SamplingSettings(steps: 16, guidance: 4), seed: UInt64 = 0xA2C4) {
            self.sampling = sampling; self.seed = seed
            self.sampling.useAdapter = false
            self.sampling.sdeNoise = nil
        }

        /// `anchors: {steps, guidance, seed}` of `matchDistributions` and `evaluate`.
        public static let specs: [OptionSpec<Settings>] = [
            .int("steps", \.sampling.steps, 1...1000, "Sampler steps of an anchor."),
            .number("guidance", \.sampling.guidance, 0...100, nullable: false, "Guidance weight of the anchors' sampling."),
            .seed(\.seed, "Seed of the anchors (each follows from it and its prompt)."),
        ]
    }

    public let settings: Settings
    /// Floats of one anchor (packed tokens).
    public let anchorSize: Int
    private var store: [String: [Tensor]] = [:]

    public init(settings: Settings = Settings(), model: FlowModel) {
        self.settings = settings
        anchorSize = model.packing.tokens * model.packing.tokenChannels
    }

    /// Anchors held for `prompt`.
    public func count(_ prompt: String) -> Int { store[prompt]?.count ?? 0 }

    /// Anchor `index` of `prompt`, packed tokens `[N, C·p²]`.
    public func anchor(_ prompt: String, _ index: Int) -> Tensor? {
        guard let list = store[prompt], index < list.count else { return nil }
        return list[index]
    }

    /// Prompts held, sorted.
    public var prompts: [String] { store.keys.sorted() }

    /// The (prompt, index) requests still missing for `count` anchors of each of `prompts`.
    public func missing(_ prompts: [String], count: Int) -> [BatchedSampling.Request] {
        missing(prompts.map { ($0, count) })
    }

    /// The (prompt, index) requests still missing for `count` anchors of each target's prompt (the
    /// first target of a prompt given twice counts).
    public func missing(_ targets: [(prompt: String, count: Int)]) -> [BatchedSampling.Request] {
        var seen = Set<String>(), out: [BatchedSampling.Request] = []
        for (p, count) in targets where seen.insert(p).inserted {
            for j in self.count(p)..<max(count, self.count(p)) {
                out.append(.init(prompt: p, seed: SeedHash.seed(settings.seed, p, j)))
            }
        }
        return out
    }

    /// A procedure that samples the missing anchors (with the reference model) and stores them when
    /// it finishes; nil when nothing is missing.
    public func fill(model: FlowModel, prompts: [String], count: Int, chunk: Int? = nil) throws -> AnchorFill? {
        try fill(model: model, targets: prompts.map { ($0, count) }, chunk: chunk)
    }

    /// As `fill(model:prompts:count:chunk:)` with a count per prompt.
    public func fill(model: FlowModel, targets: [(prompt: String, count: Int)], chunk: Int? = nil) throws -> AnchorFill? {
        let req = missing(targets)
        guard !req.isEmpty else { return nil }
        return AnchorFill(bank: self, sampling: try BatchedSampling(model: model, requests: req, settings: settings.sampling,
                                                                    chunk: chunk))
    }

    fileprivate func insert(_ requests: [BatchedSampling.Request], tokens: Tensor) {
        for (i, r) in requests.enumerated() {
            // Another fill may have stored some of these meanwhile: keep the list a prefix 0, 1, 2, ….
            let j = store[r.prompt, default: []].count
            guard r.seed == SeedHash.seed(settings.seed, r.prompt, j) else { continue }
            let t = Tensor(zeros: [anchorSize])
            t.data.update(from: tokens.data + i * anchorSize, count: anchorSize)
            store[r.prompt, default: []].append(t)
        }
    }

    // MARK: Saving

    /// Adds the anchors to `archive` under `prefix`.
    public func save(into archive: StateArchive, prefix: String) throws {
        let names = prompts
        try archive.set(prefix + "prompts", json: names)
        try archive.set(prefix + "settings", json: settings)
        for (i, p) in names.enumerated() {
            let list = store[p]!
            let t = Tensor(zeros: [list.count, anchorSize])
            for (j, a) in list.enumerated() { (t.data + j * anchorSize).update(from: a.data, count: anchorSize) }
            archive.set(prefix + "\(i)", t)
        }
    }

    /// Restores anchors saved by `save(into:prefix:)`; they must have been made with the same settings.
    public func restore(from archive: StateArchive, prefix: String) throws {
        let saved: Settings = try archive.json(prefix + "settings")
        guard saved == settings else {
            throw EruDiffError.badState(path: archive.source, problem: "anchors were sampled with other settings")
        }
        let names: [String] = try archive.json(prefix + "prompts")
        store = [:]
        for (i, p) in names.enumerated() {
            let t = try archive.tensor(prefix + "\(i)")
            guard t.count % anchorSize == 0 else {
                throw EruDiffError.badState(path: archive.source, problem: "anchors of '\(p)' have a wrong size")
            }
            store[p] = (0..<(t.count / anchorSize)).map { j in
                let a = Tensor(zeros: [anchorSize])
                a.data.update(from: t.data + j * anchorSize, count: anchorSize)
                return a
            }
        }
    }
}

/// Sampling of missing anchors into an `AnchorBank` (see `AnchorBank.fill`).
public final class AnchorFill: Procedure {
    public let bank: AnchorBank
    public let sampling: BatchedSampling
    private var stored = false

    init(bank: AnchorBank, sampling: BatchedSampling) {
        self.bank = bank
        self.sampling = sampling
    }

    public var totalUnits: Int { sampling.totalUnits }
    public var isFinished: Bool { stored }
    public var output: AnchorBank? { stored ? bank : nil }

    public func next() throws -> ProcedureProgress? {
        guard !stored else { return nil }
        var p = try sampling.next()
        if sampling.isFinished {
            bank.insert(sampling.requests, tokens: sampling.tokens)
            stored = true
        }
        p?.stage = "anchors"
        return p
    }
}

extension AnchorBank {
    /// Bytes of anchor images held.
    public var bytes: Int { store.values.reduce(0) { $0 + $1.count * anchorSize * MemoryLayout<Float>.size } }
}
