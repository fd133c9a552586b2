import EruDiff
import Foundation
import World

extension MethodTable {
    /// The engine's methods of DESIGN §7 (`sample`, `matchDistributions`, `rlStep`, `evaluate`,
    /// `encode`, `models/list|load|unload`, `adapters/save|load|reset`, and `images/grid`). Each group
    /// lives in a file of its own in this folder and is registered here with one line; the model
    /// loader for `--model NAME=PATH` and `models/load` is installed here too.
    func registerEngineMethods(options: DaemonOptions, models: ModelRegistry) {
        let engine = Engine(options: options, models: models)
        models.loader = { name, path, state in
            try Engine.checkModelName(name)
            return try EngineModel.load(name: name, path: path, state: state, minilm: options.minilm)
        }
        registerSample(engine)
        registerMatchDistributions(engine)
        registerRLStep(engine)
        registerEvaluate(engine)
        registerEncode(engine)
        registerModelMethods(engine)
        registerAdapterMethods(engine)
        registerGrid(engine)
    }
}

/// What the engine's methods share: the options, the resident models, the sample store and the
/// bundled knowledge base.
final class Engine {
    let options: DaemonOptions
    let models: ModelRegistry
    let samples: SampleStore
    private let knowledgeBase: Result<KnowledgeBase, Error>

    init(options: DaemonOptions, models: ModelRegistry) {
        self.options = options
        self.models = models
        samples = SampleStore(limit: options.sampleStoreLimit, ttl: TimeInterval(options.sampleTTL))
        knowledgeBase = Result { try KnowledgeBase.bundled() }
    }

    /// The bundled knowledge base (world sets and rewards).
    func knowledge() throws -> KnowledgeBase {
        do { return try knowledgeBase.get() } catch {
            throw RPCError.internalError("the bundled knowledge base cannot be read: \(error)")
        }
    }

    /// The model the request names (`model`, default "mini"), or `-32002` saying how to load one.
    func model(_ params: Params) throws -> EngineModel {
        let name = try params.model()
        return try model(named: name)
    }

    func model(named name: String) throws -> EngineModel {
        let m = try models.model(name)
        guard let e = m as? EngineModel else {
            throw RPCError.internalError("model \(name) is not an engine model")
        }
        return e
    }

    /// Model names become file names under the state directory.
    static func checkModelName(_ name: String) throws {
        let ok = !name.isEmpty && name.count <= 64 && !name.hasPrefix(".")
            && name.unicodeScalars.allSatisfy { CharacterSet.alphanumerics.contains($0) || "._-".unicodeScalars.contains($0) }
        guard ok else {
            throw RPCError.invalidParams("\"name\" must be 1 to 64 letters, digits, '.', '_' or '-' (not starting with '.'), got \"\(name)\"")
        }
    }

    /// Engine errors thrown in a unit, as JSON-RPC errors: a bad argument is `-32602`.
    static func rpcError(_ error: Error) -> Error {
        if error is RPCError { return error }
        if case let EruDiffError.invalidArgument(s) = error { return RPCError.invalidParams(s) }
        return RPCError.internalError("\(error)")
    }
}
