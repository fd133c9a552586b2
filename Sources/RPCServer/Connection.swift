import CUV
import Foundation

/// One client on the socket: reads bytes, cuts frames, hands message bodies to the dispatcher, frames
/// and writes what it sends back. Lives on the loop thread.
final class Connection: Peer {
    static let readBufferSize = 64 * 1024

    enum State { case open, halfClosed, closing, closed }

    let peerID: Int
    let pipe: UnsafeMutablePointer<uv_pipe_t>
    let readBuffer = UnsafeMutableRawPointer.allocate(byteCount: Connection.readBufferSize, alignment: 16)
    private(set) var state = State.open
    private var parser: FrameParser
    private unowned let server: Server
    /// Most bytes allowed to wait in the write queue before the client counts as not reading.
    private let maxBacklog: Int

    private var stream: UnsafeMutablePointer<uv_stream_t> {
        UnsafeMutableRawPointer(pipe).assumingMemoryBound(to: uv_stream_t.self)
    }
    private var handle: UnsafeMutablePointer<uv_handle_t> {
        UnsafeMutableRawPointer(pipe).assumingMemoryBound(to: uv_handle_t.self)
    }

    /// `pipe` is an accepted, initialised handle; the connection owns it from now on.
    init(peerID: Int, pipe: UnsafeMutablePointer<uv_pipe_t>, server: Server, maxMessageBytes: Int) {
        self.peerID = peerID
        self.pipe = pipe
        self.server = server
        self.parser = FrameParser(maxMessageBytes: maxMessageBytes)
        self.maxBacklog = max(64 << 20, 4 * maxMessageBytes)
        pipe.pointee.data = Unmanaged.passUnretained(self).toOpaque()
    }

    deinit { readBuffer.deallocate() }

    var fd: Int32 {
        var fd: uv_os_fd_t = -1
        _ = uv_fileno(handle, &fd)
        return fd
    }

    func start() {
        let r = uv_read_start(stream, uvOnAlloc, uvOnRead)
        if r != 0 {
            Log.warn("peer \(peerID): cannot read: \(String(cString: uv_strerror(r)))")
            closeNow()
        }
    }

    // MARK: reading

    func didRead(_ n: Int) {
        guard state == .open else { return }
        if n > 0 {
            let events = parser.feed(UnsafeRawBufferPointer(start: readBuffer, count: n))
            for event in events {
                guard state == .open else { break }
                switch event {
                case .message(let body):
                    server.dispatcher.receive(body, from: self)
                case .tooLarge(let declared):
                    let size = declared.map { "a \($0)-byte frame" } ?? "a frame"
                    Log.warn("peer \(peerID): \(size) exceeds --max-message-bytes \(parser.maxMessageBytes); closing")
                    send(RPCOutgoing.error(id: .null, .tooLarge(limit: parser.maxMessageBytes)))
                    closeAfterFlush()
                case .badHeader(let reason):
                    Log.warn("peer \(peerID): unreadable LSP header (\(reason)); closing")
                    closeAfterFlush()
                }
            }
        } else if n < 0 {
            if n == Int(UV_EOF.rawValue) && !SocketPath.peerHungUp(fd: fd) {
                // The client closed only its writing side: answer what it asked, then close.
                uv_read_stop(stream)
                if parser.pendingBytes > 0 {
                    Log.info("peer \(peerID): stopped sending in the middle of a frame (\(parser.pendingBytes) bytes dropped)")
                }
                state = .halfClosed
                if server.dispatcher.inflight(self) == 0 { closeAfterFlush() }
            } else {
                if parser.pendingBytes > 0 {
                    Log.info("peer \(peerID): disconnected in the middle of a frame (\(parser.pendingBytes) bytes dropped)")
                } else {
                    Log.debug("peer \(peerID): disconnected")
                }
                server.dispatcher.peerGone(self)
                closeNow()
            }
        }
    }

    /// Called by the server's timer: a half-closed client that has since gone away entirely.
    func checkHangUp() {
        if state == .halfClosed && SocketPath.peerHungUp(fd: fd) {
            Log.info("peer \(peerID): gone while waiting for replies")
            server.dispatcher.peerGone(self)
            closeNow()
        }
    }

    /// The dispatcher owes this client nothing more.
    func idle() {
        if state == .halfClosed { closeAfterFlush() }
    }

    // MARK: writing

    func send(_ message: JSON) {
        guard state == .open || state == .halfClosed else { return }
        let bytes = (parser.framing ?? .line).encode(message.serialized())
        if uv_stream_get_write_queue_size(stream) + bytes.count > maxBacklog {
            Log.warn("peer \(peerID): not reading its replies (over \(maxBacklog) bytes queued); closing")
            server.dispatcher.peerGone(self)
            closeNow()
            return
        }
        write(bytes)
    }

    private func write(_ bytes: [UInt8]) {
        let header = MemoryLayout<uv_write_t>.stride
        let block = UnsafeMutableRawPointer.allocate(byteCount: header + bytes.count, alignment: 16)
        let req = block.bindMemory(to: uv_write_t.self, capacity: 1)
        let payload = block + header
        bytes.withUnsafeBytes { payload.copyMemory(from: $0.baseAddress!, byteCount: bytes.count) }
        var buf = uv_buf_init(payload.assumingMemoryBound(to: CChar.self), UInt32(bytes.count))
        let r = uv_write(req, stream, &buf, 1, uvOnWrite)
        if r != 0 {
            block.deallocate()
            Log.debug("peer \(peerID): write failed: \(String(cString: uv_strerror(r)))")
            server.dispatcher.peerGone(self)
            closeNow()
        }
    }

    // MARK: closing

    /// Stops reading, cancels the client's jobs, sends what is queued, then closes.
    func closeAfterFlush() {
        guard state == .open || state == .halfClosed else { return }
        server.dispatcher.peerGone(self)
        state = .closing
        uv_read_stop(stream)
        let req = UnsafeMutableRawPointer.allocate(byteCount: MemoryLayout<uv_shutdown_t>.stride, alignment: 16)
            .bindMemory(to: uv_shutdown_t.self, capacity: 1)
        if uv_shutdown(req, stream, uvOnShutdown) != 0 {
            UnsafeMutableRawPointer(req).deallocate()
            closeNow()
        }
    }

    /// Closes at once; queued writes are dropped.
    func closeNow() {
        guard state != .closed, uv_is_closing(handle) == 0 else { return }
        state = .closing
        uv_close(handle, uvOnConnectionClosed)
    }

    func didClose() {
        state = .closed
        server.connectionClosed(self)
        UnsafeMutableRawPointer(pipe).deallocate()
    }
}
