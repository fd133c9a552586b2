import Foundation
import Tensors

/// Loading and saving FLUX transformer checkpoints in diffusers' layout: a folder with `config.json` and
/// `diffusion_pytorch_model.safetensors` (what `FluxTransformer2DModel.save_pretrained` writes and
/// `from_pretrained` reads; `model.safetensors` is accepted too), tensors under diffusers' names.
public enum FluxCheckpoint {
    /// The weight file names looked for in a checkpoint folder, in order.
    public static let weightFileNames = ["diffusion_pytorch_model.safetensors", "model.safetensors"]

    /// Loads the folder's config and weights. F32 weights are memory-mapped, not copied. Names or shapes
    /// that do not fit the config are one error listing every missing, unexpected and mis-shaped tensor.
    public static func load(directory: URL) throws -> FluxWeights {
        let config = try FluxConfig(contentsOf: directory.appendingPathComponent("config.json"))
        guard let file = weightFileNames.map({ directory.appendingPathComponent($0) })
            .first(where: { FileManager.default.fileExists(atPath: $0.path) }) else {
            let sharded = directory.appendingPathComponent("diffusion_pytorch_model.safetensors.index.json")
            let why = FileManager.default.fileExists(atPath: sharded.path)
                ? "sharded checkpoints are not supported; merge the shards into one file"
                : "no " + weightFileNames.joined(separator: " or ")
            throw FluxError.io(path: directory.path, problem: why)
        }
        return try load(weights: file, config: config)
    }

    /// Loads the weights of a model of `config` from one safetensors file.
    public static func load(weights url: URL, config: FluxConfig) throws -> FluxWeights {
        let file: SafeTensors
        do { file = try SafeTensors(contentsOf: url) } catch {
            throw FluxError.io(path: url.path, problem: "\(error)")
        }
        let layout = FluxWeights.layout(config)
        let expected = Dictionary(layout.map { ($0.name, $0.shape) }, uniquingKeysWith: { a, _ in a })
        var missing: [String] = [], misshaped: [String] = []
        for (name, shape) in layout {
            guard let e = file.entries[name] else { missing.append(name); continue }
            if e.shape != shape { misshaped.append("\(name) \(e.shape) (expected \(shape))") }
        }
        let unexpected = file.names.filter { expected[$0] == nil }
        if !missing.isEmpty || !unexpected.isEmpty || !misshaped.isEmpty {
            throw FluxError.checkpointMismatch(path: url.path, missing: missing, unexpected: unexpected,
                                               misshaped: misshaped)
        }
        var dict: [String: Tensor] = [:]
        for (name, _) in layout {
            do { dict[name] = try file.tensor(named: name) } catch {
                throw FluxError.io(path: url.path, problem: "\(error)")
            }
        }
        return FluxWeights(config: config, tensors: dict)
    }

    /// Writes `config.json` and `diffusion_pytorch_model.safetensors` into `directory` (created if
    /// needed), each atomically.
    public static func save(_ weights: FluxWeights, directory: URL) throws {
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        } catch {
            throw FluxError.io(path: directory.path, problem: "cannot create directory: \(error.localizedDescription)")
        }
        try weights.config.write(to: directory.appendingPathComponent("config.json"))
        try SafeTensors.write(weights.tensors, metadata: ["format": "pt"],
                              to: directory.appendingPathComponent(weightFileNames[0]))
    }
}

extension FluxTransformer {
    /// A model from a diffusers checkpoint folder (see `FluxCheckpoint.load(directory:)`).
    public static func load(directory: URL) throws -> FluxTransformer {
        FluxTransformer(weights: try FluxCheckpoint.load(directory: directory))
    }

    /// Saves the base weights in diffusers' layout (the adapter is not included: see
    /// `LoRAAdapter.save` and `LoRAAdapter.merged(with:)`).
    public func save(directory: URL) throws {
        try FluxCheckpoint.save(weights, directory: directory)
    }
}
