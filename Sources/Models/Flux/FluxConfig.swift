import Foundation

/// The hyper-parameters of a FLUX flow transformer: exactly the keys of diffusers'
/// `FluxTransformer2DModel` `config.json`, so a diffusers checkpoint folder describes itself.
///
/// Derived sizes follow diffusers: width `innerDim = heads·headDim`, MLP width 4·innerDim, output
/// features `patchSize²·outChannels`, RoPE axes summing to the head dimension.
public struct FluxConfig: Equatable, Sendable {
    public var patchSize: Int
    public var inChannels: Int
    /// `out_channels`; diffusers' `null` means "same as in_channels".
    public var outChannels: Int
    public var numLayers: Int
    public var numSingleLayers: Int
    public var attentionHeadDim: Int
    public var numAttentionHeads: Int
    public var jointAttentionDim: Int
    public var pooledProjectionDim: Int
    public var guidanceEmbeds: Bool
    public var axesDimsRope: [Int]

    public init(patchSize: Int = 1, inChannels: Int, outChannels: Int? = nil, numLayers: Int, numSingleLayers: Int,
                attentionHeadDim: Int, numAttentionHeads: Int, jointAttentionDim: Int, pooledProjectionDim: Int,
                guidanceEmbeds: Bool = false, axesDimsRope: [Int]) {
        self.patchSize = patchSize
        self.inChannels = inChannels
        self.outChannels = outChannels ?? inChannels
        self.numLayers = numLayers
        self.numSingleLayers = numSingleLayers
        self.attentionHeadDim = attentionHeadDim
        self.numAttentionHeads = numAttentionHeads
        self.jointAttentionDim = jointAttentionDim
        self.pooledProjectionDim = pooledProjectionDim
        self.guidanceEmbeds = guidanceEmbeds
        self.axesDimsRope = axesDimsRope
    }

    /// The default `mini` model of DESIGN.md §3.2: 32×32 RGB packed 4×4 (48 channels), width 128
    /// (4 heads × 32), 2 double + 4 single blocks, MiniLM text (384).
    public static let mini = FluxConfig(inChannels: 48, numLayers: 2, numSingleLayers: 4, attentionHeadDim: 32,
                                        numAttentionHeads: 4, jointAttentionDim: 384, pooledProjectionDim: 384,
                                        axesDimsRope: [8, 12, 12])

    /// Model width (`inner_dim`).
    public var innerDim: Int { numAttentionHeads * attentionHeadDim }
    /// Hidden width of every MLP (diffusers' mlp_ratio 4).
    public var mlpDim: Int { 4 * innerDim }
    /// Features per output token (`proj_out`).
    public var outFeatures: Int { patchSize * patchSize * outChannels }

    /// Checks the relations diffusers relies on; throws naming the first that fails.
    public func validate(source: String = "config") throws {
        func bad(_ s: String) -> FluxError { .invalidConfig(source: source, problem: s) }
        for (name, v) in [("patch_size", patchSize), ("in_channels", inChannels), ("out_channels", outChannels),
                          ("attention_head_dim", attentionHeadDim), ("num_attention_heads", numAttentionHeads),
                          ("joint_attention_dim", jointAttentionDim), ("pooled_projection_dim", pooledProjectionDim)]
        where v <= 0 { throw bad("\(name) must be positive, got \(v)") }
        if numLayers < 0 || numSingleLayers < 0 { throw bad("layer counts must not be negative") }
        if attentionHeadDim % 2 != 0 { throw bad("attention_head_dim \(attentionHeadDim) must be even (rotary pairs)") }
        if axesDimsRope.isEmpty || axesDimsRope.contains(where: { $0 <= 0 || $0 % 2 != 0 }) {
            throw bad("axes_dims_rope \(axesDimsRope) must be positive even numbers")
        }
        if axesDimsRope.reduce(0, +) != attentionHeadDim {
            throw bad("axes_dims_rope \(axesDimsRope) sum to \(axesDimsRope.reduce(0, +)), not attention_head_dim \(attentionHeadDim)")
        }
    }

    /// Reads a diffusers `config.json` (unknown and `_`-prefixed keys are ignored; `out_channels: null`
    /// means in_channels).
    public init(contentsOf url: URL) throws {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw FluxError.io(path: url.path, problem: "cannot read: \(error.localizedDescription)")
        }
        guard let obj = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw FluxError.invalidConfig(source: url.path, problem: "not a JSON object")
        }
        try self.init(json: obj, source: url.path)
    }

    /// Builds from a decoded `config.json` object.
    public init(json: [String: Any], source: String = "config") throws {
        func int(_ key: String, default d: Int? = nil) throws -> Int {
            guard let v = json[key], !(v is NSNull) else {
                if let d { return d }
                throw FluxError.invalidConfig(source: source, problem: "missing key '\(key)'")
            }
            guard let n = v as? NSNumber, n.doubleValue == n.doubleValue.rounded() else {
                throw FluxError.invalidConfig(source: source, problem: "'\(key)' is not an integer")
            }
            return n.intValue
        }
        let axes: [Int]
        if let a = json["axes_dims_rope"] {
            guard let arr = a as? [NSNumber] else {
                throw FluxError.invalidConfig(source: source, problem: "'axes_dims_rope' is not a list of integers")
            }
            axes = arr.map { $0.intValue }
        } else {
            axes = [16, 56, 56]
        }
        let inCh = try int("in_channels", default: 64)
        self.init(patchSize: try int("patch_size", default: 1), inChannels: inCh,
                  outChannels: try int("out_channels", default: inCh),
                  numLayers: try int("num_layers", default: 19), numSingleLayers: try int("num_single_layers", default: 38),
                  attentionHeadDim: try int("attention_head_dim", default: 128),
                  numAttentionHeads: try int("num_attention_heads", default: 24),
                  jointAttentionDim: try int("joint_attention_dim", default: 4096),
                  pooledProjectionDim: try int("pooled_projection_dim", default: 768),
                  guidanceEmbeds: (json["guidance_embeds"] as? Bool) ?? false, axesDimsRope: axes)
        try validate(source: source)
    }

    /// The `config.json` object diffusers' `from_pretrained` reads.
    public var json: [String: Any] {
        ["_class_name": "FluxTransformer2DModel", "patch_size": patchSize, "in_channels": inChannels,
         "out_channels": outChannels, "num_layers": numLayers, "num_single_layers": numSingleLayers,
         "attention_head_dim": attentionHeadDim, "num_attention_heads": numAttentionHeads,
         "joint_attention_dim": jointAttentionDim, "pooled_projection_dim": pooledProjectionDim,
         "guidance_embeds": guidanceEmbeds, "axes_dims_rope": axesDimsRope]
    }

    /// Writes `config.json` (sorted keys, atomically).
    public func write(to url: URL) throws {
        try FluxJSON.write(json, to: url)
    }
}
