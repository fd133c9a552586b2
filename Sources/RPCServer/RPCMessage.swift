/// A JSON-RPC request id: a string or a number, or null (allowed by the spec, used for replies to
/// messages whose id could not be read).
public enum RPCID: Hashable, CustomStringConvertible, Sendable {
    case int(Int64)
    case double(Double)
    case string(String)
    case null

    public init?(_ json: JSON) {
        switch json {
        case .int(let i): self = .int(i)
        case .double(let d): self = .double(d)
        case .string(let s): self = .string(s)
        case .null: self = .null
        default: return nil
        }
    }

    public var json: JSON {
        switch self {
        case .int(let i): return .int(i)
        case .double(let d): return .double(d)
        case .string(let s): return .string(s)
        case .null: return .null
        }
    }

    public var description: String { json.text }
}

/// One incoming message after JSON-RPC validation.
public enum RPCIncoming: Equatable, Sendable {
    /// A request (`id` present) or a notification (`id == nil`).
    case request(RPCRequest)
    /// Not a valid request; answered with this error and this id (null when unreadable).
    case invalid(RPCError, id: RPCID)
    /// A response object (the server never sends requests, so these are logged and dropped).
    case response
}

public struct RPCRequest: Equatable, Sendable {
    /// nil for a notification.
    public let id: RPCID?
    public let method: String
    /// An object or an array when present (a null `params` arrives as nil).
    public let params: JSON?

    public init(id: RPCID?, method: String, params: JSON?) {
        self.id = id
        self.method = method
        self.params = params
    }

    public var isNotification: Bool { id == nil }

    /// Checks one element (or the whole message) against JSON-RPC 2.0 §4.
    public static func decode(_ json: JSON) -> RPCIncoming {
        guard case .object(let o) = json else {
            return .invalid(.invalidRequest("a request must be a JSON object, got \(json.kindDescription)"), id: .null)
        }
        var id: RPCID? = nil
        if let raw = o["id"] {
            guard let parsed = RPCID(raw) else {
                return .invalid(.invalidRequest("\"id\" must be a string, a number or null, got \(raw.kindDescription)"),
                                id: .null)
            }
            id = parsed
        }
        if o["method"] == nil, o["result"] != nil || o["error"] != nil, id != nil {
            return .response
        }
        let replyId = id ?? .null
        guard o["jsonrpc"] == .string("2.0") else {
            return .invalid(.invalidRequest("\"jsonrpc\" must be exactly \"2.0\""), id: replyId)
        }
        guard let methodValue = o["method"] else {
            return .invalid(.invalidRequest("missing \"method\""), id: replyId)
        }
        guard case .string(let method) = methodValue else {
            return .invalid(.invalidRequest("\"method\" must be a string, got \(methodValue.kindDescription)"), id: replyId)
        }
        // A null `params` is taken as none: JSON-RPC 2.0 says to omit it, but LSP's `shutdown` and
        // `exit` carry no params and clients differ in how they say so (Emacs's jsonrpc.el sends null).
        let params = o["params"] == .null ? nil : o["params"]
        if let params {
            switch params {
            case .object, .array: break
            default:
                return .invalid(.invalidRequest("\"params\" must be an object or an array, got \(params.kindDescription)"),
                                id: replyId)
            }
        }
        return .request(RPCRequest(id: id, method: method, params: params))
    }
}

/// Builders for the messages the server sends.
public enum RPCOutgoing {
    public static func result(id: RPCID, _ result: JSON) -> JSON {
        ["jsonrpc": "2.0", "id": id.json, "result": result]
    }

    public static func error(id: RPCID, _ error: RPCError) -> JSON {
        ["jsonrpc": "2.0", "id": id.json, "error": error.json]
    }

    public static func notification(_ method: String, _ params: JSON) -> JSON {
        ["jsonrpc": "2.0", "method": .string(method), "params": params]
    }
}
