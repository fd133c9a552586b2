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
/// reads, or several in one read. After a fatal event (`tooLarge`, `badHeader`) the parser stops and the
/// connection is to be closed.
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

    /// `framing`: already known (nil: chosen by the first byte fed).
    public init(maxMessageBytes: Int, framing: Framing? = nil) {
        self.maxMessageBytes = maxMessageBytes
        self.framing = framing
    }

    /// Bytes received but not yet part of a complete frame.
    public var pendingBytes: Int { buffer.count - start }

    /// Feeds newly read bytes and returns the events they complete, in order.
    public mutating func feed<C: Collection>(_ bytes: C) -> [Event] where C.Element == UInt8 {
        guard !failed, !bytes.isEmpty else { return [] }
        if framing == nil {
            let first = bytes.first!
            framing = (first == UInt8(ascii: "C") || first == UInt8(ascii: "c")) ? .lsp : .line
        }
        buffer.append(contentsOf: bytes)
        var events: [Event] = []
        while !failed, let event = (framing == .lsp ? nextLSP() : nextLine()) {
            events.append(event)
        }
        compact()
        return events
    }

    private mutating func fail(_ event: Event) -> Event {
        failed = true
        buffer = []
        start = 0
        scanned = 0
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
            if line.count > maxMessageBytes { return fail(.tooLarge(declared: nil)) }
            if line.allSatisfy({ $0 == 32 || $0 == 9 || $0 == 13 }) { continue }   // blank line
            return .message(line)
        }
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
