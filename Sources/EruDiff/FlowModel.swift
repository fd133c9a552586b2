import Diffusion
import Foundation
import Models
import Tensors
import World

/// A text-to-image flow model ready to use: the FLUX transformer of a model folder, its pipeline
/// settings (`erudiff.json`), the MiniLM text encoder behind an encoding cache, and the current LoRA
/// adapter. It is what the daemon holds per model name and what every EruDiff procedure works on.
///
/// The frozen reference model of DK-DM and NO-RL is this model with the adapter off (same weights,
/// no copy). Not thread-safe: one unit of work at a time. Procedures may interleave their units,
/// since the shared inference workspace holds nothing between two forward passes.
public final class FlowModel {
    /// The name the model goes by (the folder's name by default).
    public let name: String
    /// Where it was loaded from (nil for a model built in memory).
    public let directory: URL?
    public let transformer: FluxTransformer
    public let pipeline: FluxPipelineConfig
    public let packing: FluxPacking
    /// Turns prompts into context states and pooled vectors (usually an `EncodingCache`).
    public let encoder: PromptEncoder

    /// Most rows one no-grad forward pass may take (sampling chunks, reference and dislocation passes
    /// are cut to it): bounds the shared inference workspace, whose size grows with its rows.
    public var maxInferenceRows = 32

    private var sharedWorkspace: FluxWorkspace?
    private var emptyPrompt: TextConditioning?

    /// Wraps a transformer already in memory (tests, freshly trained models). Checks that the
    /// transformer's widths fit the packing and the encoder.
    public init(transformer: FluxTransformer, pipeline: FluxPipelineConfig, encoder: PromptEncoder,
                name: String = "model", directory: URL? = nil) throws {
        let packing: FluxPacking
        do {
            packing = try pipeline.packing()
            try packing.check(transformer.config)
        } catch {
            throw EruDiffError.modelFolder(path: directory?.path ?? name, problem: "\(error)")
        }
        guard pipeline.textTokens >= 2 else {
            throw EruDiffError.modelFolder(path: directory?.path ?? name, problem: "text_tokens must be at least 2")
        }
        self.name = name
        self.directory = directory
        self.transformer = transformer
        self.pipeline = pipeline
        self.packing = packing
        self.encoder = encoder
        let probe = try encode([""])
        guard probe.states.shape[2] == transformer.config.jointAttentionDim,
              probe.pooled.shape[1] == transformer.config.pooledProjectionDim else {
            throw EruDiffError.modelFolder(
                path: directory?.path ?? name,
                problem: "the text encoder gives states of width \(probe.states.shape[2]) and pooled vectors of "
                    + "\(probe.pooled.shape[1]), the transformer expects \(transformer.config.jointAttentionDim) and "
                    + "\(transformer.config.pooledProjectionDim)")
        }
        emptyPrompt = probe
    }

    /// Loads a model folder — diffusers' `config.json` and weights (`diffusion_pytorch_model.safetensors`
    /// or `model.safetensors`) and erudiff's `erudiff.json` — with `encoder` for its prompts.
    public convenience init(directory: URL, encoder: PromptEncoder, name: String? = nil) throws {
        let path = directory.path
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue else {
            throw EruDiffError.modelFolder(path: path, problem: "no such folder")
        }
        let pipeURL = directory.appendingPathComponent(FluxPipelineConfig.fileName)
        guard FileManager.default.fileExists(atPath: pipeURL.path) else {
            throw EruDiffError.modelFolder(path: path, problem: "no \(FluxPipelineConfig.fileName) (image size, patch, text tokens)")
        }
        let pipeline: FluxPipelineConfig, transformer: FluxTransformer
        do {
            pipeline = try FluxPipelineConfig(contentsOf: pipeURL)
            transformer = try FluxTransformer.load(directory: directory)
        } catch {
            throw EruDiffError.modelFolder(path: path, problem: "\(error)")
        }
        try self.init(transformer: transformer, pipeline: pipeline, encoder: encoder,
                      name: name ?? directory.lastPathComponent, directory: directory)
    }

    /// Loads a model folder with the MiniLM text encoder (found by `MiniLMLocator`: `minilm`, else
    /// `ERUDIFF_MINILM`, else the installed package) behind an `EncodingCache` of `cacheCapacity` prompts.
    /// An entry keeps its prompt's token states, so the default bounds the cache's share of the daemon's
    /// memory (DESIGN §6; docs/decisions.md, "Prompts are encoded in passes"). A prompt evicted and
    /// encoded again gives the same bits.
    public static func load(directory: URL, name: String? = nil, minilm: String? = nil,
                            cacheCapacity: Int = 1024) throws -> FlowModel {
        let pipeURL = directory.appendingPathComponent(FluxPipelineConfig.fileName)
        let tokens = (try? FluxPipelineConfig(contentsOf: pipeURL))?.textTokens ?? 32
        let encoder = try TextEncoder(path: minilm, maxLength: max(2, min(tokens, 512)))
        return try FlowModel(directory: directory, encoder: EncodingCache(encoder: encoder, capacity: cacheCapacity),
                             name: name)
    }

    // MARK: Text

    /// Tokens of context per prompt (pads included).
    public var textTokens: Int { pipeline.textTokens }

    /// The transformer's text input for `prompts`: states `[n, textTokens, hidden]` with pads zeroed
    /// and the pooled sentence vectors `[n, hidden]` (sentence-transformers' normalised mean, the
    /// same input pretraining used).
    /// Longer lists are encoded in passes of `encodePassSize` prompts.
    public func encode(_ prompts: [String]) throws -> TextConditioning {
        guard !prompts.isEmpty else { throw EruDiffError.invalidArgument("no prompts to encode") }
        var states: Tensor?, pooled: Tensor?
        for start in stride(from: 0, to: prompts.count, by: Self.encodePassSize) {
            let end = min(prompts.count, start + Self.encodePassSize)
            let e = try encoder.context(Array(prompts[start..<end]), length: textTokens)
            let s = e.states.count / (end - start), p = e.pooled.count / (end - start)
            if states == nil {
                states = Tensor(zeros: [prompts.count] + Array(e.states.shape.dropFirst()))
                pooled = Tensor(zeros: [prompts.count] + Array(e.pooled.shape.dropFirst()))
            }
            (states!.data + start * s).update(from: e.states.data, count: e.states.count)
            (pooled!.data + start * p).update(from: e.pooled.data, count: e.pooled.count)
        }
        return try TextConditioning(states: states!, pooled: pooled!)
    }

    /// Prompts per text-encoder pass in `encode`. The encoder keeps scratch memory sized to its largest
    /// pass, so a job's few hundred prompts (DK-DM's pairs and replay captions) would otherwise hold tens
    /// of MB for the daemon's lifetime; a prompt's encoding does not depend on the others in its pass.
    public static let encodePassSize = 64

    /// The text encoder's view of `prompts` at the model's context length: token ids, mask, states
    /// and pooled vectors (the daemon's `encode`).
    public func textEncoding(_ prompts: [String]) throws -> TextEncoding {
        guard !prompts.isEmpty else { throw EruDiffError.invalidArgument("no prompts to encode") }
        return try encoder.context(prompts, length: textTokens)
    }

    /// The unconditional input (the empty prompt), encoded once.
    public func unconditional() throws -> TextConditioning {
        if let e = emptyPrompt { return e }
        let e = try encode([""])
        emptyPrompt = e
        return e
    }

    // MARK: Adapter

    /// The current LoRA adapter, nil when the model runs its base weights alone.
    public var adapter: LoRAAdapter? { transformer.adapter }

    /// Replaces the adapter with a fresh one (PEFT init: A random from `seed`, B zero, so the model is
    /// unchanged until it is trained) on the default targets, or on `targets`.
    @discardableResult
    public func createAdapter(rank: Int, alpha: Float, targets: [String]? = nil, seed: UInt64) throws -> LoRAAdapter {
        try LoRASettings.specs.check(LoRASettings(rank: rank, alpha: alpha, seed: seed), "LoRA")
        let a = try LoRAAdapter.initialized(config: transformer.config, rank: rank, alpha: alpha, targets: targets, seed: seed)
        transformer.adapter = a
        return a
    }

    /// Drops the adapter: the model is its base weights again.
    public func removeAdapter() { transformer.adapter = nil }

    /// Re-initialises the current adapter's weights in place (same targets, rank and alpha), as
    /// `createAdapter` would; does nothing without an adapter.
    public func resetAdapter(seed: UInt64) throws {
        guard let a = adapter else { return }
        let fresh = try LoRAAdapter.initialized(config: transformer.config, rank: a.rank, alpha: a.alpha,
                                                targets: a.modules, seed: seed)
        a.copy(from: fresh)
    }

    /// Whether forward passes apply the adapter (false also when there is none).
    public var adapterEnabled: Bool {
        get { adapter?.enabled ?? false }
        set { adapter?.enabled = newValue }
    }

    /// Writes the adapter as PEFT safetensors, atomically (temporary file, fsync, rename).
    public func saveAdapter(to url: URL) throws {
        guard let a = adapter else { throw EruDiffError.invalidArgument("model \(name) has no adapter to save") }
        try a.save(to: url)
    }

    /// Loads a PEFT LoRA safetensors file as the current adapter (enabled).
    @discardableResult
    public func loadAdapter(from url: URL, alpha: Float? = nil) throws -> LoRAAdapter {
        let a = try LoRAAdapter.load(from: url, config: transformer.config, alpha: alpha)
        transformer.adapter = a
        return a
    }

    // MARK: Sampling

    /// An inference workspace for at least `rows` rows, shared by everything that runs on this model
    /// (it holds nothing between forward passes). Grows on demand.
    public func inferenceWorkspace(rows: Int) throws -> FluxWorkspace {
        if let ws = sharedWorkspace, ws.maxBatch >= rows { return ws }
        let ws = try FluxWorkspace(config: transformer.config, batch: max(rows, sharedWorkspace?.maxBatch ?? 0),
                                   positions: packing.positions(textTokens: textTokens), training: false)
        sharedWorkspace = ws
        return ws
    }

    /// A step-by-step sampler of one image per prompt, image i drawn from `seeds[i]`.
    public func sampler(prompts: [String], seeds: [UInt64], settings: SamplingSettings = SamplingSettings()) throws -> FlowSampler {
        try settings.validate()
        let text = try encode(prompts)
        return try sampler(text: text, seeds: seeds, settings: settings)
    }

    /// A sampler over prompts already encoded (`text`, one row per image).
    public func sampler(text: TextConditioning, seeds: [UInt64], settings: SamplingSettings) throws -> FlowSampler {
        let guided = settings.guidance.map { $0 != 1 } ?? false
        let rows = guided ? 2 * text.count : text.count
        return try FlowSampler(model: transformer, packing: packing, prompts: text,
                               unconditional: guided ? try unconditional() : nil,
                               guidance: guided ? settings.guidance : nil, seeds: seeds, steps: settings.steps,
                               shift: .fixed(pipeline.shift), method: settings.method, useAdapter: settings.useAdapter,
                               prediction: pipeline.prediction, workspace: try inferenceWorkspace(rows: rows))
    }

    /// Images per sampler run that keep a guided (two rows per image) or unguided run within
    /// `maxInferenceRows`.
    public func samplingChunk(_ settings: SamplingSettings) -> Int {
        let guided = settings.guidance.map { $0 != 1 } ?? false
        return max(1, guided ? maxInferenceRows / 2 : maxInferenceRows)
    }

    /// Runs a no-grad forward over `rows` rows in passes of at most `maxInferenceRows` with `adapter` in
    /// place of the model's own (nil: the model's own, switched off), writing the velocities `[rows, N,
    /// C·p²]` from `out`. `input(start, count)` builds a pass.
    func forwardInChunks(rows: Int, adapter: LoRAAdapter?, into out: UnsafeMutablePointer<Float>,
                         input: (Int, Int) throws -> FluxInput) throws {
        let own = transformer.adapter, ws = try inferenceWorkspace(rows: min(rows, maxInferenceRows))
        defer { transformer.adapter = own }
        if let adapter { transformer.adapter = adapter }
        var start = 0
        while start < rows {
            let n = min(maxInferenceRows, rows - start), v = try velocity(try input(start, n), workspace: ws, useAdapter: adapter != nil)
            (out + start * (v.count / n)).update(from: v.data, count: v.count)
            start += n
        }
    }

    // MARK: Velocities

    /// A forward pass that returns the flow velocity `[B, N, C·p²]` whatever the network predicts
    /// (`pipeline.prediction`): every procedure's loss and measure is written in velocities. The
    /// result is the workspace's output, valid until its next pass.
    public func velocity(_ input: FluxInput, workspace: FluxWorkspace, useAdapter: Bool) throws -> Tensor {
        let out = try transformer.forward(input, workspace: workspace, useAdapter: useAdapter)
        FlowMatching.velocities(fromOutput: out.data, prediction: pipeline.prediction, xt: input.image.data,
                                times: input.timesteps, perRow: out.count / input.timesteps.count)
        return out
    }

    /// Turns a loss's gradient with respect to the velocities of `times.count` rows into its gradient
    /// with respect to the network's output, in place: the backward of `velocity`'s conversion.
    public func outputGradient(fromVelocityGradient grad: Tensor, times: ArraySlice<Float>) {
        FlowMatching.outputGradient(grad.data, prediction: pipeline.prediction, times: times,
                                    perRow: grad.count / times.count)
    }

    /// Samples images `[n, H, W, C]` in [-1, 1] (as the model made them, unclamped) in one run.
    public func sample(prompts: [String], seeds: [UInt64], settings: SamplingSettings = SamplingSettings()) throws -> Tensor {
        let s = try sampler(prompts: prompts, seeds: seeds, settings: settings)
        try s.run()
        return s.images()
    }

    /// Image `index` of `images` `[n, H, W, C]` as 8-bit RGB (clamped).
    public func rgbImage(_ images: Tensor, index: Int) -> RGBImage {
        RGBImage(signedUnit: images.data + index * packing.pixelCount, width: packing.width, height: packing.height)
    }

    /// The PNG file bytes of every image of `images` `[n, H, W, C]`.
    public func pngs(_ images: Tensor) throws -> [[UInt8]] {
        let n = images.count / packing.pixelCount
        return try (0..<n).map { try PNG.encode(rgbImage(images, index: $0)) }
    }

    // MARK: Memory

    /// Bytes the model holds, for `status`.
    public struct Memory: Codable, Equatable, Sendable {
        /// Transformer weights (memory-mapped from the checkpoint when loaded from disk).
        public var weights: Int
        /// The LoRA adapter's A and B tensors.
        public var adapter: Int
        /// The shared inference workspace.
        public var workspaces: Int
        /// The text encoder's weight file, when known.
        public var textEncoder: Int
        public var total: Int { weights + adapter + workspaces + textEncoder }
    }

    public var memory: Memory {
        let w = transformer.weights.tensors.reduce(0) { $0 + $1.tensor.byteCount }
        var te = 0
        let folder: URL? = (encoder as? EncodingCache)?.encoder.folder ?? (encoder as? TextEncoder)?.folder
        if let folder, let size = try? FileManager.default.attributesOfItem(
            atPath: folder.appendingPathComponent("model.safetensors").path)[.size] as? NSNumber {
            te = size.intValue
        }
        return Memory(weights: w, adapter: adapter?.flat.byteCount ?? 0, workspaces: sharedWorkspace?.byteCount ?? 0,
                      textEncoder: te)
    }
}
