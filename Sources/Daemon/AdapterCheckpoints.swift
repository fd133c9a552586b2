import Foundation
import Models
import RPCServer
import Tensors

/// Where a model's adapter is checkpointed under `--state-dir`: `adapters/<model>.safetensors`, a PEFT
/// LoRA file (the names and metadata `LoRAAdapter.save` writes) with the daemon's own metadata beside
/// PEFT's: `erudiff.steps` (training steps the adapter has taken) and `erudiff.model_path`. Written
/// atomically (temporary file, fsync, rename), so after `kill -9` the file is the last complete
/// checkpoint; the daemon reloads it when it loads a model of that name (unless its values are not
/// all finite: such a checkpoint is refused with a warning, and the model starts without an adapter).
struct AdapterCheckpoints {
    let state: StateDirectory
    let model: String

    static let stepsKey = "erudiff.steps"
    static let modelPathKey = "erudiff.model_path"

    var relativePath: String { "adapters/\(model).safetensors" }
    var adapterPath: String { state.path + "/" + relativePath }
    var exists: Bool { FileManager.default.fileExists(atPath: adapterPath) }

    var modified: Date? {
        (try? FileManager.default.attributesOfItem(atPath: adapterPath))?[.modificationDate] as? Date
    }

    /// Writes `adapter` (and `steps`) atomically; returns the file's path.
    func save(_ adapter: LoRAAdapter, steps: Int, modelPath: String) throws -> String {
        let url = try state.url(for: relativePath)
        try AdapterCheckpoints.write(adapter, steps: steps, modelPath: modelPath, to: url)
        return url.path
    }

    /// Writes `adapter` as a PEFT safetensors file that also records `steps`, atomically, mode 0600.
    /// An adapter with NaN or infinite values (training that diverged) is not written: the file keeps
    /// the last good one.
    static func write(_ adapter: LoRAAdapter, steps: Int, modelPath: String?, to url: URL) throws {
        if let bad = adapter.nonFinite() {
            throw RPCError.internalError("the adapter was not written to \(url.path): \(bad) (training diverged? "
                                         + "try a lower learningRate); the file keeps what it held")
        }
        var meta = ["format": "peft", "rank": String(adapter.rank), "alpha": String(adapter.alpha),
                    "target_modules": adapter.modules.joined(separator: ","), stepsKey: String(steps)]
        if let modelPath { meta[modelPathKey] = modelPath }
        try SafeTensors.write(adapter.tensors, metadata: meta, to: url, permissions: 0o600)
    }

    /// The checkpointed adapter (enabled) and its steps.
    func load(config: FluxConfig) throws -> (LoRAAdapter, Int) {
        try AdapterCheckpoints.read(URL(fileURLWithPath: adapterPath), config: config, alpha: nil)
    }

    /// A PEFT LoRA file for a model of `config`, and the training steps it records (0 if none).
    static func read(_ url: URL, config: FluxConfig, alpha: Float?) throws -> (LoRAAdapter, Int) {
        let adapter = try LoRAAdapter.load(from: url, config: config, alpha: alpha)
        let meta = (try? SafeTensors(contentsOf: url))?.metadata ?? [:]
        return (adapter, meta[stepsKey].flatMap { Int($0) } ?? 0)
    }

    func remove() {
        try? FileManager.default.removeItem(atPath: adapterPath)
    }
}
