/// How messages are delimited on one connection, chosen by the first byte the client sends:
/// `C`/`c` starts an LSP base-protocol header (`Content-Length: N\r\n\r\n` + body), anything else means
/// one JSON message per line. Replies use the same framing as the caller.
public enum Framing: String, Sendable {
    case lsp
    case line

    /// Wraps one message body in this framing.
    public func encode(_ body: [UInt8]) -> [UInt8] {
        switch self {
        case .lsp:
            var out = Array("Content-Length: \(body.count)\r\n\r\n".utf8)
            out.reserveCapacity(out.count + body.count)
            out.append(contentsOf: body)
            return out
        case .line:
            var out = body
            out.append(UInt8(ascii: "\n"))
            return out
        }
    }
}

/// Cuts a byte stream into message bodies, incrementally: frames may arrive split across any number of
/// reads, or several in one read. A big unfinished frame is kept as the pieces it came in and joined
/// once when complete, so it grows without copying what came before (with many clients sending big
/// frames at the same pace, buffers doubling together would make single turns of the loop long).
/// After a fatal event (`tooLarge`, `badHeader`) the parser stops and the connection is to be closed.
public struct FrameParser {
    public enum Event: Equatable, Sendable {
        /// One complete message body (not yet parsed as JSON).
        case message([UInt8])
        /// A frame larger than the limit; `declared` is its Content-Length when the header said so.
        case tooLarge(declared: Int?)
        /// The LSP header block cannot be read; the reason names what is wrong.
        case badHeader(String)
    }

    /// Longest header block accepted (all header lines together).
    public static let maxHeaderBytes = 8192

    public private(set) var framing: Framing?
    public private(set) var failed = false
    public let maxMessageBytes: Int

    private var buffer: [UInt8] = []
    private var start = 0          // first unconsumed byte
    private var scanned = 0        // bytes after `start` already searched for a delimiter
    private var bodyLength: Int?   // LSP: header read, waiting for this many body bytes
    /// The unfinished frame's bytes, once more than `spillBytes` of it came: the body so far (LSP) or
    /// the line so far, without a delimiter (line framing). `buffer` is then empty.
    private var pieces: [[UInt8]] = []
    private var piecesBytes = 0
    /// Size of the unfinished frame in `buffer` at which it moves to `pieces`.
    static let spillBytes = 64 * 1024

    /// `framing`: already known (nil: chosen by the first byte fed).
    public init(maxMessageBytes: Int, framing: Framing? = nil) {
        self.maxMessageBytes = maxMessageBytes
        self.framing = framing
    }

    /// Bytes received but not yet part of a complete frame.
    public var pendingBytes: Int { piecesBytes + buffer.count - start }

    /// Feeds newly read bytes and returns the events they complete, in order.
    public mutating func feed<C: Collection>(_ bytes: C) -> [Event] where C.Element == UInt8 {
        guard !failed, !bytes.isEmpty else { return [] }
        if framing == nil {
            let first = bytes.first!
            framing = (first == UInt8(ascii: "C") || first == UInt8(ascii: "c")) ? .lsp : .line
        }
        var events: [Event] = []
        var rest = bytes[...]
        if !pieces.isEmpty {
            guard let (event, after) = continuePieces(rest) else { return [] }
            if let event { events.append(event) }
            if failed { return events }
            rest = after
        }
        buffer.append(contentsOf: rest)
        while !failed, let event = (framing == .lsp ? nextLSP() : nextLine()) {
            events.append(event)
        }
        if !failed { spill() }
        compact()
        return events
    }

    /// Adds the newly read bytes to the big unfinished frame. Nil when all of them belong to it and it
    /// is still unfinished; else the frame's event (nil for a blank line) and the bytes after it.
    private mutating func continuePieces<S: Collection>(_ bytes: S) -> (Event?, S.SubSequence)? where S.Element == UInt8 {
        switch framing {
        case .lsp:
            let take = min(bodyLength! - piecesBytes, bytes.count)
            let cut = bytes.index(bytes.startIndex, offsetBy: take)
            pieces.append(Array(bytes[..<cut]))
            piecesBytes += take
            guard piecesBytes == bodyLength else { return nil }
            bodyLength = nil
            return (.message(joinPieces()), bytes[cut...])
        default:
            guard let nl = bytes.firstIndex(of: UInt8(ascii: "\n")) else {
                piecesBytes += bytes.count
                if piecesBytes > maxMessageBytes + 1 { return (fail(.tooLarge(declared: nil)), bytes[bytes.endIndex...]) }
                pieces.append(Array(bytes))
                return nil
            }
            pieces.append(Array(bytes[..<nl]))
            piecesBytes += pieces[pieces.count - 1].count
            var line = joinPieces()
            if line.last == 13 { line.removeLast() }
            return (lineEvent(line), bytes[bytes.index(after: nl)...])
        }
    }

    /// Moves an unfinished frame bigger than `spillBytes` from `buffer` to `pieces`, releasing the
    /// buffer (the frame's later bytes go straight to `pieces`).
    private mutating func spill() {
        let waiting = buffer.count - start
        guard waiting >= Self.spillBytes else { return }
        switch framing {
        case .lsp where bodyLength != nil: break
        case .line: break      // nextLine searched all of it: no newline
        default: return
        }
        pieces = [Array(buffer[start...])]
        piecesBytes = waiting
        buffer = []
        start = 0
        scanned = 0
    }

    /// The pieces as one array (the frame is complete).
    private mutating func joinPieces() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(piecesBytes)
        for p in pieces { out.append(contentsOf: p) }
        pieces = []
        piecesBytes = 0
        return out
    }

    private mutating func fail(_ event: Event) -> Event {
        failed = true
        buffer = []
        start = 0
        scanned = 0
        pieces = []
        piecesBytes = 0
        return event
    }

    private mutating func compact() {
        if start > 0 && (start == buffer.count || start > 65536) {
            buffer.removeSubrange(0..<start)
            start = 0
        }
    }

    // MARK: newline-delimited

    private mutating func nextLine() -> Event? {
        while true {
            let from = start + scanned
            guard let nl = buffer[from...].firstIndex(of: UInt8(ascii: "\n")) else {
                scanned = buffer.count - start
                if scanned > maxMessageBytes + 1 { return fail(.tooLarge(declared: nil)) }
                return nil
            }
            var end = nl
            if end > start && buffer[end - 1] == UInt8(ascii: "\r") { end -= 1 }
            let line = Array(buffer[start..<end])
            start = nl + 1
            scanned = 0
            if let event = lineEvent(line) { return event }
        }
    }

    /// A complete line (its CR already dropped) as an event: too large, or a message; nil for a blank line.
    private mutating func lineEvent(_ line: [UInt8]) -> Event? {
        if line.count > maxMessageBytes { return fail(.tooLarge(declared: nil)) }
        if line.allSatisfy({ $0 == 32 || $0 == 9 || $0 == 13 }) { return nil }
        return .message(line)
    }

    // MARK: LSP base protocol

    private mutating func nextLSP() -> Event? {
        if bodyLength == nil {
            guard let headerEnd = findHeaderEnd() else {
                if buffer.count - start > Self.maxHeaderBytes {
                    return fail(.badHeader("header block longer than \(Self.maxHeaderBytes) bytes"))
                }
                return nil
            }
            let header = buffer[start..<headerEnd]
            start = headerEnd + 4
            scanned = 0
            switch Self.contentLength(of: header, limit: maxMessageBytes) {
            case .length(let n): bodyLength = n
            case .bad(let event): return fail(event)
            }
        }
        let n = bodyLength!
        guard buffer.count - start >= n else { return nil }
        let body = Array(buffer[start..<(start + n)])
        start += n
        bodyLength = nil
        return .message(body)
    }

    /// Index of the "\r\n\r\n" that ends the header block, searching only bytes not seen before.
    private mutating func findHeaderEnd() -> Int? {
        let end = buffer.count
        var i = max(start, start + scanned - 3)
        while i + 3 < end {
            if buffer[i] == 13 && buffer[i + 1] == 10 && buffer[i + 2] == 13 && buffer[i + 3] == 10 { return i }
            i += 1
        }
        scanned = end - start
        return nil
    }

    /// Reads the header lines; only Content-Length matters, other well-formed headers are ignored.
    private enum HeaderOutcome {
        case length(Int)
        case bad(Event)
    }

    private static func contentLength(of header: ArraySlice<UInt8>, limit: Int) -> HeaderOutcome {
        var length: Int?
        let text = String(decoding: header, as: UTF8.self)
        for line in text.split(separator: "\r\n", omittingEmptySubsequences: false) {
            guard let colon = line.firstIndex(of: ":") else {
                return .bad(.badHeader("header line without a colon: \(line.prefix(60).debugDescription)"))
            }
            let name = line[..<colon]
            guard !name.isEmpty, name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }) else {
                return .bad(.badHeader("bad header name \(name.prefix(60).debugDescription)"))
            }
            let value = line[line.index(after: colon)...].trimmingCharacters(in: " \t")
            guard name.lowercased() == "content-length" else { continue }
            guard length == nil else { return .bad(.badHeader("Content-Length given twice")) }
            guard !value.isEmpty, value.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }) else {
                return .bad(.badHeader("Content-Length is not a decimal number: \(value.prefix(40).debugDescription)"))
            }
            guard value.count <= 15, let n = Int(value), n <= limit else {
                return .bad(.tooLarge(declared: value.count <= 18 ? Int(value) : nil))
            }
            length = n
        }
        guard let length else { return .bad(.badHeader("no Content-Length header")) }
        return .length(length)
    }
}

extension Substring {
    fileprivate func trimmingCharacters(in set: String) -> String {
        var s = self[...]
        while let c = s.first, set.contains(c) { s = s.dropFirst() }
        while let c = s.last, set.contains(c) { s = s.dropLast() }
        return String(s)
    }
}
