import Foundation
import RPCServer

/// Loaded models by name. Models are used and changed only on the worker thread; `status` on the loop
/// thread reads the cached summary, refreshed by the worker after each unit, so it never waits.
///
/// A model loaded with a keep-alive is unloaded once it has not been used for that long. In use means
/// held: every job that works on a model holds its `EngineModel` from admission to its end, so the
/// registry's reference is the only one exactly when no job needs the model; the time counts from
/// the last moment it was held or looked up by name.
public final class ModelRegistry: @unchecked Sendable {
    private struct Entry {
        let name: String
        var model: EngineModel
        var bytes: Int
        var adapter: JSON
        var details: [String: JSON]
        /// Seconds unused after which the model is unloaded; nil = kept until `models/unload`.
        var keepAlive: Double?
        var lastUsed = Date()
    }

    private let lock = NSLock()
    private var entries: [Entry] = []
    /// `--minilm`: the text encoder's folder for every model loaded.
    private let minilm: String?

    public init(minilm: String?) { self.minilm = minilm }

    /// Loads the model folder at `path` (for `--model NAME=PATH` and `models/load`) and registers it,
    /// replacing one of the same name. Runs on the worker thread (or at start-up, before the loop runs).
    @discardableResult
    public func load(name: String, path: String, state: StateDirectory, keepAlive: Double? = nil) throws -> EngineModel {
        try Engine.checkModelName(name)
        let model = try EngineModel.load(name: name, path: path, state: state, minilm: minilm)
        let old: EngineModel? = lock.withLock {
            let previous = entries.firstIndex { $0.name == name }.map { entries.remove(at: $0).model }
            entries.append(Entry(name: name, model: model, bytes: model.bytes, adapter: model.adapter, details: model.details,
                                 keepAlive: keepAlive))
            return previous
        }
        old?.unloaded()
        return model
    }

    /// Removes a model; false when no model has that name.
    @discardableResult
    public func unload(name: String) -> Bool {
        let old: EngineModel? = lock.withLock {
            entries.firstIndex { $0.name == name }.map { entries.remove(at: $0).model }
        }
        old?.unloaded()
        return old != nil
    }

    /// The model of that name, or `-32002 model not loaded`.
    public func model(_ name: String) throws -> EngineModel {
        let (found, all): (EngineModel?, [String]) = lock.withLock {
            guard let i = entries.firstIndex(where: { $0.name == name }) else { return (nil, entries.map(\.name)) }
            entries[i].lastUsed = Date()
            return (entries[i].model, [])
        }
        guard let m = found else { throw RPCError.modelNotLoaded(name, loaded: all) }
        return m
    }

    /// Re-reads memory and adapter state of every model (worker thread, between units), and notes
    /// which models jobs hold now (used: their keep-alive starts again).
    public func refresh() {
        let models: [(String, EngineModel)] = lock.withLock {
            let now = Date()
            for i in entries.indices where entries[i].keepAlive != nil && !isKnownUniquelyReferenced(&entries[i].model) {
                entries[i].lastUsed = now
            }
            return entries.map { ($0.name, $0.model) }
        }
        let fresh = models.map { ($0.0, $0.1.bytes, $0.1.adapter, $0.1.details) }
        lock.withLock {
            for (name, bytes, adapter, details) in fresh {
                if let i = entries.firstIndex(where: { $0.name == name }) {
                    entries[i].bytes = bytes
                    entries[i].adapter = adapter
                    entries[i].details = details
                }
            }
        }
    }

    /// `[{name, bytes, adapter}]` as last refreshed (any thread; never waits for the worker).
    public func summary() -> JSON {
        .array(lock.withLock {
            entries.map { e in
                var o = e.details
                o["name"] = .string(e.name)
                o["bytes"] = .int(Int64(e.bytes))
                o["adapter"] = e.adapter
                if let k = e.keepAlive { o["keepAlive"] = .double(k) }
                return .object(o)
            }
        })
    }

    /// Whether some model's keep-alive has passed since its last use (any thread; cheap, for the
    /// loop's timer, which then asks the worker to `unloadExpired`).
    public func keepAliveHasPassed(at now: Date = Date()) -> Bool {
        lock.withLock { entries.contains { e in e.keepAlive.map { now.timeIntervalSince(e.lastUsed) >= $0 } ?? false } }
    }

    /// Unloads the models whose keep-alive has passed and that no job holds, checkpointing their
    /// adapters (worker thread). Returns their names with the keep-alive that passed.
    public func unloadExpired(at now: Date = Date()) -> [(name: String, keepAlive: Double)] {
        let expired: [(EngineModel, Double)] = lock.withLock {
            var out: [(EngineModel, Double)] = []
            var i = entries.count - 1
            while i >= 0 {
                if let k = entries[i].keepAlive, now.timeIntervalSince(entries[i].lastUsed) >= k {
                    if isKnownUniquelyReferenced(&entries[i].model) {
                        out.append((entries.remove(at: i).model, k))
                    } else {
                        entries[i].lastUsed = now      // a job holds it: in use
                    }
                }
                i -= 1
            }
            return out
        }
        for (model, _) in expired { model.unloaded() }
        return expired.map { ($0.0.name, $0.1) }
    }

    /// Checkpoints every model (worker thread). Returns the failures, as `{"model", "error"}`.
    public func checkpointAll(into state: StateDirectory) -> [JSON] {
        lock.withLock { entries.map { ($0.name, $0.model) } }.compactMap { name, model in
            do { try model.checkpoint(into: state) } catch { return ["model": .string(name), "error": .string("\(error)")] }
            return nil
        }
    }
}

extension RPCError {
    public static let modelNotLoadedCode = -32002

    /// A model is not loaded; says how to load one: `models/load`, or `--model NAME=PATH` at start-up.
    public static func modelNotLoaded(_ name: String, loaded: [String] = []) -> RPCError {
        let have = loaded.isEmpty ? "no model is loaded" : "loaded: " + loaded.joined(separator: ", ")
        return RPCError(code: modelNotLoadedCode,
                        message: "Model not loaded: \(name) (\(have)); load it with models/load "
                            + "{\"name\": \"\(name)\", \"path\": MODEL_DIR} or start erudiffd with --model \(name)=MODEL_DIR",
                        data: ["model": .string(name), "loaded": .array(loaded.map { .string($0) })])
    }
}
