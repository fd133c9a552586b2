/// An application's error that knows its JSON-RPC form: whatever throws it — a method's checks on the
/// loop thread, a job's unit on the worker — is answered with `rpcError` (other errors are -32603).
public protocol RPCErrorConvertible: Error {
    var rpcError: RPCError { get }
}

/// A JSON-RPC error object. The standard codes come from JSON-RPC 2.0 and LSP; the server's own codes
/// (busy, shutting down, too large) lie in the server range -32000 ... -32099, where an application
/// adds its own (erudiffd's are listed in protocol/README.md).
public struct RPCError: Error, Equatable, CustomStringConvertible, Sendable {
    public let code: Int
    public let message: String
    public let data: JSON?

    public init(code: Int, message: String, data: JSON? = nil) {
        self.code = code
        self.message = message
        self.data = data
    }

    public var description: String { "JSON-RPC error \(code): \(message)" }

    public var json: JSON {
        var o: [String: JSON] = ["code": .int(Int64(code)), "message": .string(message)]
        if let data { o["data"] = data }
        return .object(o)
    }

    // JSON-RPC 2.0
    public static let parseErrorCode = -32700
    public static let invalidRequestCode = -32600
    public static let methodNotFoundCode = -32601
    public static let invalidParamsCode = -32602
    public static let internalErrorCode = -32603
    // LSP
    public static let requestCancelledCode = -32800
    // this server
    public static let busyCode = -32001
    public static let shuttingDownCode = -32003
    public static let tooLargeCode = -32004

    public static func parseError(_ detail: String) -> RPCError {
        RPCError(code: parseErrorCode, message: "Parse error: \(detail)")
    }
    public static func invalidRequest(_ detail: String) -> RPCError {
        RPCError(code: invalidRequestCode, message: "Invalid Request: \(detail)")
    }
    public static func methodNotFound(_ method: String) -> RPCError {
        RPCError(code: methodNotFoundCode, message: "Method not found: \(method)")
    }
    /// Names the parameter and says what was expected.
    public static func invalidParams(_ detail: String) -> RPCError {
        RPCError(code: invalidParamsCode, message: "Invalid params: \(detail)")
    }
    public static func internalError(_ detail: String) -> RPCError {
        RPCError(code: internalErrorCode, message: "Internal error: \(detail)")
    }
    public static let requestCancelled = RPCError(code: requestCancelledCode, message: "Request cancelled")
    public static func busy(_ detail: String) -> RPCError {
        RPCError(code: busyCode, message: "Server busy: \(detail)")
    }
    public static func shuttingDown(_ detail: String = "the daemon is shutting down") -> RPCError {
        RPCError(code: shuttingDownCode, message: "Shutting down: \(detail)")
    }
    public static func tooLarge(limit: Int) -> RPCError {
        RPCError(code: tooLargeCode, message: "Message too large: the limit is \(limit) bytes",
                 data: ["maxMessageBytes": .int(Int64(limit))])
    }
}
