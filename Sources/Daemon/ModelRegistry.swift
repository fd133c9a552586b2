import Foundation
import RPCServer

/// A model kept resident by the daemon. The engine provides the concrete type; the daemon only needs
/// what `status` shows and a way to save what was learned.
public protocol ResidentModel: AnyObject {
    /// Resident memory of the model (weights, adapter, optimizer state, caches).
    var bytes: Int { get }
    /// Adapter state for `status` (for example `{"rank": 8, "enabled": true, "steps": 120}`), or null.
    var adapter: JSON { get }
    /// More members of the model's `status` entry (path, memory breakdown, …).
    var details: [String: JSON] { get }
    /// Saves the adapter atomically under `state`; called every N training units and at shutdown.
    func checkpoint(into state: StateDirectory) throws
    /// Called when the model leaves the registry (`models/unload`, shutdown).
    func unloaded()
}

extension ResidentModel {
    public var details: [String: JSON] { [:] }
    public func checkpoint(into state: StateDirectory) throws {}
    public func unloaded() {}
}

/// Loaded models by name. Models are used and changed only on the worker thread; `status` on the loop
/// thread reads the cached summary, refreshed by the worker after each unit, so it never waits.
public final class ModelRegistry: @unchecked Sendable {
    /// Makes a model from a path; installed by `Engine`. Runs on the worker
    /// thread (or at start-up, before the loop runs).
    public typealias Loader = (_ name: String, _ path: String, _ state: StateDirectory) throws -> ResidentModel

    public var loader: Loader?

    private struct Entry {
        let name: String
        let model: ResidentModel
        var bytes: Int
        var adapter: JSON
        var details: [String: JSON]
    }

    private let lock = NSLock()
    private var entries: [Entry] = []

    public init() {}

    /// Loads a model with the installed loader and registers it (replacing one of the same name).
    @discardableResult
    public func load(name: String, path: String, state: StateDirectory) throws -> ResidentModel {
        guard let loader else {
            throw RPCError.internalError("this build of erudiffd has no model loader; cannot load \"\(name)\" from \(path)")
        }
        let model = try loader(name, path, state)
        register(name: name, model: model)
        return model
    }

    /// Registers an already built model.
    public func register(name: String, model: ResidentModel) {
        let old: ResidentModel? = lock.withLock {
            let previous = entries.firstIndex { $0.name == name }.map { entries.remove(at: $0).model }
            entries.append(Entry(name: name, model: model, bytes: model.bytes, adapter: model.adapter, details: model.details))
            return previous
        }
        old?.unloaded()
    }

    /// Removes a model; false when no model has that name.
    @discardableResult
    public func unload(name: String) -> Bool {
        let old: ResidentModel? = lock.withLock {
            entries.firstIndex { $0.name == name }.map { entries.remove(at: $0).model }
        }
        old?.unloaded()
        return old != nil
    }

    /// The model of that name, or `-32002 model not loaded`.
    public func model(_ name: String) throws -> ResidentModel {
        let (found, all) = lock.withLock { (entries.first { $0.name == name }?.model, entries.map(\.name)) }
        guard let m = found else { throw RPCError.modelNotLoaded(name, loaded: all) }
        return m
    }

    public var names: [String] { lock.withLock { entries.map(\.name) } }

    /// Re-reads memory and adapter state of every model (worker thread, between units).
    public func refresh() {
        let models = lock.withLock { entries.map { ($0.name, $0.model) } }
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

    /// The summary entry of one model (`[{name, bytes, adapter, …}]`'s element), or nil.
    public func summary(of name: String) -> JSON? {
        summary().arrayValue?.first { $0["name"]?.stringValue == name }
    }

    /// `[{name, bytes, adapter}]` as last refreshed (any thread; never waits for the worker).
    public func summary() -> JSON {
        .array(lock.withLock {
            entries.map { e in
                var o = e.details
                o["name"] = .string(e.name)
                o["bytes"] = .int(Int64(e.bytes))
                o["adapter"] = e.adapter
                return .object(o)
            }
        })
    }

    /// Checkpoints every model (worker thread). Returns the failures, by model name.
    public func checkpointAll(into state: StateDirectory) -> [(String, Error)] {
        let models = lock.withLock { entries.map { ($0.name, $0.model) } }
        var failures: [(String, Error)] = []
        for (name, model) in models {
            do { try model.checkpoint(into: state) } catch { failures.append((name, error)) }
        }
        return failures
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
