/// What a method handler sees on the loop thread. Anything of the application's (models, files) the
/// handler captures when it is registered.
public struct MethodContext {
    public unowned let dispatcher: Dispatcher
}

/// How a method is served.
public enum MethodKind {
    /// Answered on the loop thread at once (`status`, `initialize`). Must be quick and must not touch
    /// what jobs use on the worker.
    case immediate((MethodContext, Params) throws -> JSON)
    /// Work for the worker thread: the closure reads and checks the parameters on the loop thread
    /// (throwing `-32602` errors that name the parameter), then returns the job to run. Progress,
    /// cancellation, interleaving and checkpoints come from the scheduler.
    case job((MethodContext, Params) throws -> Job)
    /// Answered later through the reply closure (lifecycle methods that wait for the worker). The
    /// closure must call `params.finish()` before acting.
    case deferred((MethodContext, Params, @escaping (Result<JSON, RPCError>) -> Void) throws -> Void)
}

/// Method name → handler. The server knows no method but `exit`, `initialized` and `$/cancelRequest`;
/// each file of methods registers its own (`registerLifecycleMethods`, `registerTestMethods`, and an
/// application's).
public final class MethodTable {
    public struct Entry {
        public let name: String
        public let kind: MethodKind
    }

    private var entries: [String: Entry] = [:]
    private var order: [String] = []

    public init() {}

    public func register(_ name: String, _ kind: MethodKind) {
        precondition(entries[name] == nil, "method \(name) registered twice")
        entries[name] = Entry(name: name, kind: kind)
        order.append(name)
    }

    public func lookup(_ name: String) -> Entry? { entries[name] }

    /// Registered names in registration order.
    public var names: [String] { order }
}
