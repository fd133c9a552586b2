import Foundation

/// The program behind the server, as `initialize` and `status` report it.
public struct ServerInfo: Sendable {
    public let name: String
    public let version: String

    public init(name: String, version: String) {
        self.name = name
        self.version = version
    }
}

extension MethodTable {
    /// `initialize`, `shutdown` and `status` (`exit`, `initialized` and `$/cancelRequest` are handled by
    /// the dispatcher itself, since they act on the connection and the lifecycle). `status` reports the
    /// server's side (uptime, jobs, queue, connections, memory) plus the members `status` returns, read
    /// on the loop thread (the application's resources: they must not wait for the worker).
    public func registerLifecycleMethods(info: ServerInfo, options: ServerOptions,
                                         status: @escaping () -> [String: JSON] = { [:] }) {
        register("initialize", .immediate { ctx, params in
            // LSP clients send processId, clientInfo, capabilities, ...: not needed, but the ones LSP
            // defines must have LSP's types; members LSP does not define are accepted and ignored.
            _ = try params.optionalInt("processId", in: Int(Int32.min)...Int(Int32.max))
            if let info = try params.nested("clientInfo") {
                _ = try info.string("name")
                _ = try info.optionalString("version")
            }
            _ = try params.optionalString("locale")
            _ = try params.optionalString("rootPath")
            _ = try params.optionalString("rootUri")
            _ = try params.object("capabilities")
            if params.has("trace") { _ = try params.choice("trace", ["off", "messages", "verbose"]) }
            if let folders = try params.array("workspaceFolders") {
                for (i, f) in folders.enumerated() {
                    guard case .object = f else { throw params.invalid("workspaceFolders[\(i)]", "an object {uri, name}", got: f) }
                    let folder = try Params(method: "initialize", f, prefix: "workspaceFolders[\(i)].")
                    _ = try folder.string("uri")
                    _ = try folder.string("name")
                }
            }
            for key in params.values.keys { _ = params.raw(key) }
            return [
                "serverInfo": ["name": .string(info.name), "version": .string(info.version)],
                "capabilities": [
                    "methods": .array(ctx.dispatcher.methods.names.map { .string($0) }),
                    "workDoneProgress": true,
                    "cancelRequest": true,
                    "batches": true,
                    "framing": ["lsp", "line"],
                    "maxMessageBytes": .int(Int64(options.maxMessageBytes)),
                    "maxQueue": .int(Int64(options.maxQueue)),
                    "maxBatch": .int(Int64(options.maxBatch)),
                    "maxReplyBytes": .int(Int64(options.maxReplyBytes)),
                    "maxConnections": .int(Int64(options.maxConnections)),
                    "frameTimeout": .int(Int64(options.frameTimeout)),
                ],
            ]
        })

        register("shutdown", .deferred { ctx, params, reply in
            try params.finish()
            ctx.dispatcher.shutdown { reply(.success(.null)) }
        })

        register("status", .immediate { ctx, params in
            let (jobs, waiting) = ctx.dispatcher.scheduler.snapshot()
            let server: [String: JSON] = [
                "uptimeMs": .int(ctx.dispatcher.uptimeMs),
                "jobs": .array(jobs),
                "queue": .int(Int64(waiting)),
                "connections": .int(Int64(ctx.dispatcher.host?.connectionCount ?? 0)),
                "pid": .int(Int64(getpid())),
                "version": .string(info.version),
                "memory": Memory.resident().map { ["rss": .int(Int64($0.rss)), "peak": .int(Int64($0.peak))] } ?? .null,
                "loop": ctx.dispatcher.host?.loopStatus ?? .null,
                "idleExit": .double(options.idleExit),
            ]
            return .object(server.merging(status()) { _, application in application })
        })
    }
}
