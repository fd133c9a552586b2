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
    public static let replyTooLargeCode = -32005
    public static let frameTimeoutCode = -32006

    public static func parseError(_ detail: String) -> RPCError {
        RPCError(code: parseErrorCode, message: "Parse error: \(detail)")
    }
    public static func invalidRequest(_ detail: String) -> RPCError {
        RPCError(code: invalidRequestCode, message: "Invalid Request: \(detail)")
    }
    /// Names the method, cut to its first 64 characters (a hostile name is not echoed whole).
    public static func methodNotFound(_ method: String) -> RPCError {
        RPCError(code: methodNotFoundCode, message: "Method not found: \(shortened(method))")
    }
    /// At most `limit` characters of `text`; a longer one ends in "… (N bytes)".
    public static func shortened(_ text: String, limit: Int = 64) -> String {
        guard text.utf8.count > limit else { return text }
        return String(text.prefix(limit)) + "… (\(text.utf8.count) bytes)"
    }
    /// Names the parameter and says what was expected.
    public static func invalidParams(_ detail: String) -> RPCError {
        RPCError(code: invalidParamsCode, message: "Invalid params: \(detail)")
    }
    public static func internalError(_ detail: String) -> RPCError {
        RPCError(code: internalErrorCode, message: "Internal error: \(detail)")
    }
    public static let requestCancelled = RPCError(code: requestCancelledCode, message: "Request cancelled")
    public static func busy(_ detail: String, data: JSON? = nil) -> RPCError {
        RPCError(code: busyCode, message: "Server busy: \(detail)", data: data)
    }
    public static func shuttingDown(_ detail: String = "the daemon is shutting down") -> RPCError {
        RPCError(code: shuttingDownCode, message: "Shutting down: \(detail)")
    }
    public static func batchTooLarge(count: Int, limit: Int) -> RPCError {
        RPCError(code: invalidRequestCode,
                 message: "Invalid Request: a batch of \(count) requests; the limit is \(limit) (--max-batch): send fewer at once",
                 data: ["maxBatch": .int(Int64(limit)), "batch": .int(Int64(count))])
    }
    /// A reply of `bytes` (nil: a batch whose replies together passed the limit) over `--max-reply-bytes`.
    public static func replyTooLarge(bytes: Int?, limit: Int) -> RPCError {
        let what = bytes.map { "the reply is \($0) bytes" } ?? "the batch's replies passed that size before this one, which was not run"
        var data: [String: JSON] = ["maxReplyBytes": .int(Int64(limit))]
        if let bytes { data["bytes"] = .int(Int64(bytes)) }
        return RPCError(code: replyTooLargeCode, message: "Reply too large: \(what); the limit is \(limit) bytes (--max-reply-bytes)",
                        data: .object(data))
    }
    public static func frameTimeout(seconds: Int) -> RPCError {
        RPCError(code: frameTimeoutCode,
                 message: "Frame timeout: a message was not completed within \(seconds) s of its first byte (--frame-timeout \(seconds)); closing the connection",
                 data: ["frameTimeout": .int(Int64(seconds))])
    }
    public static func tooLarge(limit: Int) -> RPCError {
        RPCError(code: tooLargeCode, message: "Message too large: the limit is \(limit) bytes",
                 data: ["maxMessageBytes": .int(Int64(limit))])
    }
}
