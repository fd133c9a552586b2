import EruDiff
import Foundation
import RPCServer
import World

extension MethodTable {
    /// Every method erudiffd serves with these options: the server's lifecycle methods (`status` with
    /// the engine's models), the engine's methods of DESIGN §7 (`sample`, `matchDistributions`,
    /// `rlStep`, `evaluate`, `encode`, `models/list|load|unload`, `adapters/save|load|reset`) and
    /// `images/grid`, and the test methods when the test suite asks for them. Each group lives in a
    /// file of its own in this folder and is registered here with one line.
    static func erudiff(_ engine: Engine) -> MethodTable {
        let t = MethodTable()
        t.registerLifecycleMethods(info: Engine.info, options: engine.options.server) {
            ["models": engine.models.summary(), "stateDir": .string(engine.state.path)]
        }
        t.registerSample(engine)
        t.registerMatchDistributions(engine)
        t.registerRLStep(engine)
        t.registerEvaluate(engine)
        t.registerEncode(engine)
        t.registerModelMethods(engine)
        t.registerAdapterMethods(engine)
        t.registerGrid(engine)
        if engine.options.server.enableTestMethods {
            t.registerTestMethods { name, data in try engine.state.write("test/\(name).json", data) }
        }
        return t
    }
}

/// What the engine's methods share: the options, the resident models, the state directory, the sample
/// store and the bundled knowledge base.
final class Engine {
    static let info = ServerInfo(name: "erudiffd", version: "0.1.0")
    let options: DaemonOptions
    let models: ModelRegistry
    let state: StateDirectory
    let samples: SampleStore
    private let knowledgeBase: Result<KnowledgeBase, Error>

    init(options: DaemonOptions) {
        self.options = options
        let installed = options.minilm == nil ? DefaultModel.installedMiniLM() : nil
        if let installed { Log.info("the MiniLM text encoder comes from \(installed) (installed beside \(Engine.info.name))") }
        models = ModelRegistry(minilm: options.minilm ?? installed)
        state = StateDirectory(path: options.stateDir)
        samples = SampleStore(limit: options.sampleStoreLimit, ttl: TimeInterval(options.sampleTTL))
        knowledgeBase = Result { try KnowledgeBase.bundled() }
    }

    /// The server's hooks into the models: their `status` summary is refreshed on the worker, their
    /// adapters are checkpointed at shutdown, and models whose keep-alive passed are unloaded.
    var hooks: ServerHooks {
        let models = models, state = state
        return ServerHooks(afterWork: models.refresh, checkpoint: { models.checkpointAll(into: state) },
                           periodic: { [weak self] in self?.unloadExpiredModels($0) })
    }

    /// Whether an unload of expired models waits for the worker (loop thread only).
    private var unloading = false

    /// Loop thread, from the server's timer: when a keep-alive may have passed, the worker unloads
    /// what expired between units (a model a job holds is not expired).
    private func unloadExpiredModels(_ dispatcher: Dispatcher) {
        guard !unloading, models.keepAliveHasPassed() else { return }
        unloading = true
        let models = models
        dispatcher.onWorker({
            for (name, keepAlive) in models.unloadExpired() {
                Log.info("unloaded model \(name): unused for \(DurationText.describe(keepAlive)) (keepAlive)")
            }
            return .null
        }, completion: { [weak self] _ in self?.unloading = false })
    }

    /// The bundled knowledge base (world sets and rewards).
    func knowledge() throws -> KnowledgeBase {
        do { return try knowledgeBase.get() } catch {
            throw RPCError.internalError("the bundled knowledge base cannot be read: \(error)")
        }
    }

    /// The model the request names (`model`, default "mini"), or `-32002` saying how to load one.
    func model(_ params: Params) throws -> EngineModel {
        try model(named: params.string("model", default: DefaultModel.name))
    }

    func model(named name: String) throws -> EngineModel { try models.model(name) }

    /// `path`, given as parameter `name`, if it is absolute (the daemon's working directory is not the
    /// caller's); else `-32602`.
    static func absolute(_ path: String, _ name: String = "path") throws -> String {
        guard path.hasPrefix("/") else {
            throw RPCError.invalidParams("\"\(name)\" must be an absolute path (the daemon's working directory is not yours), got \"\(path)\"")
        }
        return path
    }

    /// Model names become file names under the state directory.
    static func checkModelName(_ name: String) throws {
        let ok = !name.isEmpty && name.count <= 64 && !name.hasPrefix(".")
            && name.unicodeScalars.allSatisfy { CharacterSet.alphanumerics.contains($0) || "._-".unicodeScalars.contains($0) }
        guard ok else {
            throw RPCError.invalidParams("\"name\" must be 1 to 64 letters, digits, '.', '_' or '-' (not starting with '.'), got \"\(name)\"")
        }
    }
}

/// Engine errors as JSON-RPC errors: a bad argument is `-32602`, anything else `-32603`.
extension EruDiffError: RPCErrorConvertible {
    public var rpcError: RPCError {
        if case let .invalidArgument(s) = self { return .invalidParams(s) }
        return .internalError("\(self)")
    }
}
