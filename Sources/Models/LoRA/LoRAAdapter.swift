import Tensors

/// A LoRA adapter for a FLUX transformer: for each target linear layer `W [out, in]`, a pair
/// `A [rank, in]`, `B [out, rank]` that adds `scale·(x·Aᵀ)·Bᵀ` to its output, `scale = alpha / rank`
/// (PEFT's convention and tensor names `<module>.lora_A.weight`, `<module>.lora_B.weight`).
///
/// The base weights are never copied or changed: the adapter is applied on the fly, and `enabled`
/// switches it off at run time (the frozen reference model is the same weights with the adapter off).
/// All A and B tensors live in one buffer (`flat`), so an optimiser, a gradient of the same shape
/// (`zerosLike()`) or a checkpoint copy handles them at once.
public final class LoRAAdapter {
    public let config: FluxConfig
    public let rank: Int
    public let alpha: Float
    /// Whether forward passes apply the adapter.
    public var enabled = true
    /// Target module names, in the model's canonical order.
    public let modules: [String]
    /// Every A and B tensor, back to back.
    public let flat: Tensor
    /// `(PEFT name, tensor)` for every A and B, in module order (A before B).
    public let tensors: [(name: String, tensor: Tensor)]
    /// A and B per linear-layer id of the model (nil where the layer has no adapter).
    let a: [Tensor?]
    let b: [Tensor?]

    /// The multiplier of the low-rank branch, alpha / rank.
    public var scale: Float { alpha / Float(rank) }

    /// An adapter of zeros on `targets` (module names; default: `LoRATargets.isDefault`).
    public init(config: FluxConfig, rank: Int, alpha: Float, targets: [String]? = nil) throws {
        guard rank > 0 else { throw FluxError.invalidInput("LoRA rank must be positive, got \(rank)") }
        let layout = FluxWeights.linearLayout(config)
        var chosen: [Int] = []
        if let targets {
            let byName = Dictionary(layout.enumerated().map { ($0.element.name, $0.offset) }, uniquingKeysWith: { a, _ in a })
            let unknown = targets.filter { byName[$0] == nil }
            if !unknown.isEmpty {
                throw FluxError.invalidInput("LoRA targets that are not linear layers of the model: " + unknown.joined(separator: ", "))
            }
            chosen = Set(targets.map { byName[$0]! }).sorted()
        } else {
            chosen = layout.indices.filter { LoRATargets.isDefault(layout[$0].name) }
        }
        let total = chosen.reduce(0) { $0 + rank * (layout[$1].inFeatures + layout[$1].outFeatures) }
        let flat = Tensor(zeros: [total])
        var a = [Tensor?](repeating: nil, count: layout.count), b = a
        var list: [(name: String, tensor: Tensor)] = []
        var offset = 0
        for id in chosen {
            let l = layout[id]
            let ta = Tensor(borrowing: flat.data + offset, shape: [rank, l.inFeatures], owner: flat)
            offset += rank * l.inFeatures
            let tb = Tensor(borrowing: flat.data + offset, shape: [l.outFeatures, rank], owner: flat)
            offset += rank * l.outFeatures
            a[id] = ta; b[id] = tb
            list.append((l.name + ".lora_A.weight", ta))
            list.append((l.name + ".lora_B.weight", tb))
        }
        self.config = config
        self.rank = rank
        self.alpha = alpha
        self.modules = chosen.map { layout[$0].name }
        self.flat = flat
        self.tensors = list
        self.a = a
        self.b = b
    }

    /// A fresh adapter with PEFT's default init: A kaiming-uniform (a = √5, i.e. U(−1/√in, 1/√in)),
    /// B zero — so it starts as the identity change. Draws come from `RNG(seed:)`.
    public static func initialized(config: FluxConfig, rank: Int, alpha: Float, targets: [String]? = nil,
                                   seed: UInt64) throws -> LoRAAdapter {
        let adapter = try LoRAAdapter(config: config, rank: rank, alpha: alpha, targets: targets)
        var rng = RNG(seed: seed)
        for case let ta? in adapter.a {
            let bound = 1 / Float(ta.shape[1]).squareRoot()
            rng.fillUniform(ta.data, count: ta.count, lo: -bound, hi: bound)
        }
        return adapter
    }

    /// An adapter of zeros with the same targets, rank and alpha (gradients, optimiser moments).
    public func zerosLike() -> LoRAAdapter {
        // The targets exist by construction, so this cannot throw.
        try! LoRAAdapter(config: config, rank: rank, alpha: alpha, targets: modules)
    }

    /// Copies every A and B from `other` (same targets and rank): snapshots such as v_old.
    public func copy(from other: LoRAAdapter) {
        precondition(other.modules == modules && other.rank == rank, "LoRA adapters of different layout")
        flat.copy(from: other.flat)
    }

    /// A and B of linear layer `id`, if it has an adapter.
    public func pair(forLinear id: Int) -> (a: Tensor, b: Tensor)? {
        guard id < a.count, let ta = a[id], let tb = b[id] else { return nil }
        return (ta, tb)
    }

    /// Number of scalar parameters.
    public var parameterCount: Int { flat.count }
}
