import Foundation

/// The daemon's version, reported by `initialize` and `status`.
public let erudiffdVersion = "0.1.0"

extension MethodTable {
    /// `initialize`, `shutdown` and `status` (`exit`, `initialized` and `$/cancelRequest` are handled by
    /// the dispatcher itself, since they act on the connection and the lifecycle).
    func registerLifecycleMethods() {
        register("initialize", .immediate { ctx, params in
            // LSP clients send processId, clientInfo, capabilities, ...: accepted and not needed.
            for key in params.values.keys { _ = params.raw(key) }
            return [
                "serverInfo": ["name": "erudiffd", "version": .string(erudiffdVersion)],
                "capabilities": [
                    "methods": .array(ctx.dispatcher.methods.names.map { .string($0) }),
                    "workDoneProgress": true,
                    "cancelRequest": true,
                    "batches": true,
                    "framing": ["lsp", "line"],
                    "maxMessageBytes": .int(Int64(ctx.options.maxMessageBytes)),
                    "maxQueue": .int(Int64(ctx.options.maxQueue)),
                ],
            ]
        })

        register("shutdown", .deferred { ctx, params, reply in
            try params.finish()
            ctx.dispatcher.shutdown { reply(.success(.null)) }
        })

        register("status", .immediate { ctx, params in
            let (jobs, waiting) = ctx.dispatcher.scheduler.snapshot()
            return [
                "uptimeMs": .int(ctx.dispatcher.uptimeMs),
                "models": ctx.models.summary(),
                "jobs": .array(jobs),
                "queue": .int(Int64(waiting)),
                "connections": .int(Int64(ctx.dispatcher.host?.connectionCount ?? 0)),
                "pid": .int(Int64(getpid())),
                "version": .string(erudiffdVersion),
                "memory": Memory.resident().map { ["rss": .int(Int64($0.rss)), "peak": .int(Int64($0.peak))] } ?? .null,
                "stateDir": .string(ctx.options.stateDir),
            ]
        })
    }
}
