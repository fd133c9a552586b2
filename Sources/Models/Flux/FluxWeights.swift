import Tensors

/// One fully connected layer of the transformer: `weight [out, in]` and `bias [out]` as diffusers
/// stores them, named by its module path (e.g. `transformer_blocks.0.attn.to_q`).
public struct FluxLinearWeights {
    /// diffusers' module name; the tensors are `<name>.weight` and `<name>.bias`.
    public let name: String
    /// Position among all linear layers of the model (LoRA adapters index their slots by it).
    public let id: Int
    public let weight: Tensor
    public let bias: Tensor?
    public var inFeatures: Int { weight.shape[1] }
    public var outFeatures: Int { weight.shape[0] }
}

/// The weights of one double-stream block (`FluxTransformerBlock`): separate image and text
/// (`context`) projections around one joint attention.
public struct FluxDoubleBlockWeights {
    public let norm1, norm1Context: FluxLinearWeights
    public let toQ, toK, toV, toOut: FluxLinearWeights
    public let addQ, addK, addV, toAddOut: FluxLinearWeights
    public let normQ, normK, normAddedQ, normAddedK: Tensor
    public let ff0, ff2, ffContext0, ffContext2: FluxLinearWeights
}

/// The weights of one single-stream block (`FluxSingleTransformerBlock`): attention and MLP in
/// parallel over the joint sequence.
public struct FluxSingleBlockWeights {
    public let norm: FluxLinearWeights
    public let toQ, toK, toV: FluxLinearWeights
    public let normQ, normK: Tensor
    public let projMLP, projOut: FluxLinearWeights
}

/// Every parameter of a `FluxTransformer2DModel`, by diffusers' tensor names, with typed access per
/// module. The same type holds gradients (and optimiser moments): a structure of tensors shaped like the
/// model's.
public final class FluxWeights {
    public let config: FluxConfig
    /// Every tensor in the canonical order (the order diffusers' modules declare them).
    public let tensors: [(name: String, tensor: Tensor)]
    /// Every linear layer, indexed by `FluxLinearWeights.id`.
    public let linears: [FluxLinearWeights]

    public let timeLinear1, timeLinear2: FluxLinearWeights
    public let guidanceLinear1, guidanceLinear2: FluxLinearWeights?
    public let textLinear1, textLinear2: FluxLinearWeights
    public let contextEmbedder, xEmbedder: FluxLinearWeights
    public let doubleBlocks: [FluxDoubleBlockWeights]
    public let singleBlocks: [FluxSingleBlockWeights]
    public let normOut, projOut: FluxLinearWeights
    /// One buffer holding every tensor back to back, when they were allocated together (zero-filled
    /// gradients, freshly initialised models); nil for loaded (memory-mapped) weights.
    public let flat: Tensor?
    private let matrixCount: Int
    /// Bumped by `markChanged()`: inference caches derived from the values (packed copies) are rebuilt
    /// when it moves. Whoever writes the tensors in place calls `markChanged()` afterwards (the trainer,
    /// LoRA merging and state restoring do).
    public private(set) var generation = 0

    /// Says the values were changed in place (see `generation`).
    public func markChanged() { generation &+= 1 }

    /// Builds the structure, asking `make(name, shape)` for each tensor in canonical order.
    init(config: FluxConfig, flat: Tensor? = nil, matrixCount: Int = 0,
         _ make: (String, [Int]) throws -> Tensor) rethrows {
        self.config = config
        self.flat = flat
        self.matrixCount = matrixCount
        var list: [(name: String, tensor: Tensor)] = []
        var lins: [FluxLinearWeights] = []
        func tensor(_ name: String, _ shape: [Int]) throws -> Tensor {
            let t = try make(name, shape)
            list.append((name, t))
            return t
        }
        func linear(_ name: String, _ i: Int, _ o: Int, bias: Bool = true) throws -> FluxLinearWeights {
            let w = try tensor(name + ".weight", [o, i])
            let b = bias ? try tensor(name + ".bias", [o]) : nil
            let l = FluxLinearWeights(name: name, id: lins.count, weight: w, bias: b)
            lins.append(l)
            return l
        }
        let c = config.innerDim, d = config.attentionHeadDim, m = config.mlpDim
        let tt = "time_text_embed."
        timeLinear1 = try linear(tt + "timestep_embedder.linear_1", FluxConditioning.sinusoidDim, c)
        timeLinear2 = try linear(tt + "timestep_embedder.linear_2", c, c)
        if config.guidanceEmbeds {
            guidanceLinear1 = try linear(tt + "guidance_embedder.linear_1", FluxConditioning.sinusoidDim, c)
            guidanceLinear2 = try linear(tt + "guidance_embedder.linear_2", c, c)
        } else {
            guidanceLinear1 = nil; guidanceLinear2 = nil
        }
        textLinear1 = try linear(tt + "text_embedder.linear_1", config.pooledProjectionDim, c)
        textLinear2 = try linear(tt + "text_embedder.linear_2", c, c)
        contextEmbedder = try linear("context_embedder", config.jointAttentionDim, c)
        xEmbedder = try linear("x_embedder", config.inChannels, c)
        var doubles: [FluxDoubleBlockWeights] = []
        for i in 0..<config.numLayers {
            let p = "transformer_blocks.\(i)."
            let n1 = try linear(p + "norm1.linear", c, 6 * c)
            let n1c = try linear(p + "norm1_context.linear", c, 6 * c)
            let nq = try tensor(p + "attn.norm_q.weight", [d]), nk = try tensor(p + "attn.norm_k.weight", [d])
            let q = try linear(p + "attn.to_q", c, c), k = try linear(p + "attn.to_k", c, c)
            let v = try linear(p + "attn.to_v", c, c)
            let o = try linear(p + "attn.to_out.0", c, c)
            let naq = try tensor(p + "attn.norm_added_q.weight", [d])
            let nak = try tensor(p + "attn.norm_added_k.weight", [d])
            let aq = try linear(p + "attn.add_q_proj", c, c), ak = try linear(p + "attn.add_k_proj", c, c)
            let av = try linear(p + "attn.add_v_proj", c, c)
            let ao = try linear(p + "attn.to_add_out", c, c)
            let f0 = try linear(p + "ff.net.0.proj", c, m), f2 = try linear(p + "ff.net.2", m, c)
            let fc0 = try linear(p + "ff_context.net.0.proj", c, m), fc2 = try linear(p + "ff_context.net.2", m, c)
            doubles.append(FluxDoubleBlockWeights(norm1: n1, norm1Context: n1c, toQ: q, toK: k, toV: v, toOut: o,
                                                  addQ: aq, addK: ak, addV: av, toAddOut: ao, normQ: nq, normK: nk,
                                                  normAddedQ: naq, normAddedK: nak, ff0: f0, ff2: f2,
                                                  ffContext0: fc0, ffContext2: fc2))
        }
        doubleBlocks = doubles
        var singles: [FluxSingleBlockWeights] = []
        for i in 0..<config.numSingleLayers {
            let p = "single_transformer_blocks.\(i)."
            let n = try linear(p + "norm.linear", c, 3 * c)
            let mlp = try linear(p + "proj_mlp", c, m)
            let out = try linear(p + "proj_out", c + m, c)
            let nq = try tensor(p + "attn.norm_q.weight", [d]), nk = try tensor(p + "attn.norm_k.weight", [d])
            let q = try linear(p + "attn.to_q", c, c), k = try linear(p + "attn.to_k", c, c)
            let v = try linear(p + "attn.to_v", c, c)
            singles.append(FluxSingleBlockWeights(norm: n, toQ: q, toK: k, toV: v, normQ: nq, normK: nk,
                                                  projMLP: mlp, projOut: out))
        }
        singleBlocks = singles
        normOut = try linear("norm_out.linear", c, 2 * c)
        projOut = try linear("proj_out", c, config.outFeatures)
        tensors = list
        linears = lins
    }

    /// Names and shapes of every parameter a model of `config` has, in canonical order.
    public static func layout(_ config: FluxConfig) -> [(name: String, shape: [Int])] {
        shapeOnly(config).tensors.map { ($0.name, $0.tensor.shape) }
    }

    /// Every linear layer of a model of `config`: module name and features, indexed by id.
    public static func linearLayout(_ config: FluxConfig) -> [(name: String, inFeatures: Int, outFeatures: Int)] {
        shapeOnly(config).linears.map { ($0.name, $0.inFeatures, $0.outFeatures) }
    }

    /// The structure with shaped views of one dummy float: for reading names and shapes only.
    private static func shapeOnly(_ config: FluxConfig) -> FluxWeights {
        let dummy = Tensor(zeros: [1])
        return FluxWeights(config: config) { _, shape in Tensor(borrowing: dummy.data, shape: shape, owner: dummy) }
    }

    /// All tensors in one zero-filled buffer (gradients, optimiser moments, a fresh model): every
    /// matrix first, then every vector (biases, norm weights), so that `matrices` and `vectors` are two
    /// contiguous ranges (an optimiser decays the first and not the second).
    public static func zeros(_ config: FluxConfig) -> FluxWeights {
        let shapes = layout(config)
        let total = shapes.reduce(0) { $0 + $1.shape.reduce(1, *) }
        let matrixTotal = shapes.filter { $0.shape.count > 1 }.reduce(0) { $0 + $1.shape.reduce(1, *) }
        let flat = Tensor(zeros: [total])
        var matrixOffset = 0, vectorOffset = matrixTotal
        return FluxWeights(config: config, flat: flat, matrixCount: matrixTotal) { _, shape in
            let n = shape.reduce(1, *)
            let p: UnsafeMutablePointer<Float>
            if shape.count > 1 { p = flat.data + matrixOffset; matrixOffset += n }
            else { p = flat.data + vectorOffset; vectorOffset += n }
            return Tensor(borrowing: p, shape: shape, owner: flat)
        }
    }

    /// The matrices (linear weights) of a flat structure, as one tensor.
    public var matrices: Tensor? {
        flat.map { Tensor(borrowing: $0.data, shape: [matrixCount], owner: $0) }
    }

    /// The vectors (biases, norm weights) of a flat structure, as one tensor.
    public var vectors: Tensor? {
        flat.map { Tensor(borrowing: $0.data + matrixCount, shape: [$0.count - matrixCount], owner: $0) }
    }

    /// Wraps already-validated tensors (see `FluxCheckpoint`).
    convenience init(config: FluxConfig, tensors dict: [String: Tensor]) {
        self.init(config: config) { name, _ in dict[name]! }
    }

    /// The tensor called `name`, if the model has one.
    public subscript(name: String) -> Tensor? { tensors.first { $0.name == name }?.tensor }

    /// Number of scalar parameters.
    public var parameterCount: Int { tensors.reduce(0) { $0 + $1.tensor.count } }

    /// Sets every tensor to zero.
    public func zero() {
        if let flat { flat.zero() } else { for t in tensors { t.tensor.zero() } }
    }

    /// A copy whose tensors live in one owned buffer (e.g. to train a memory-mapped checkpoint).
    public func contiguousCopy() -> FluxWeights {
        let copy = FluxWeights.zeros(config)
        copy.copy(from: self)
        return copy
    }

    /// Overwrites every tensor with `other`'s (same config, so the same names in the same order) and
    /// marks the weights changed.
    public func copy(from other: FluxWeights) {
        precondition(other.config == config, "copying weights of another model shape")
        for (dst, src) in zip(tensors, other.tensors) { dst.tensor.copy(from: src.tensor) }
        markChanged()
    }
}
