import CUV
import Foundation

/// One client on the socket: reads bytes, cuts frames, hands message bodies to the dispatcher one at a
/// time (the next only when the dispatcher is done with the last, so a batch worked in slices or a big
/// message parsed off the loop keeps the client's order), frames and writes what it sends back. It
/// stops reading while its messages wait and while its unfinished frame is over its share of the
/// server's buffer budget, so what it sends waits in the kernel, not in the daemon's memory. Lives on
/// the loop thread.
final class Connection: Peer {
    static let readBufferSize = 64 * 1024
    /// Bytes read from one client in one turn of the loop before it waits for the next turn, so that
    /// clients streaming big frames cannot make a turn long for everyone else.
    static let maxReadPerTurn = 2 * readBufferSize
    /// Bytes of complete messages allowed to wait before the connection stops reading.
    static let maxInboxBytes = 256 * 1024

    enum State { case open, halfClosed, closing, closed }

    let peerID: Int
    let pipe: UnsafeMutablePointer<uv_pipe_t>
    let readBuffer = UnsafeMutableRawPointer.allocate(byteCount: Connection.readBufferSize, alignment: 16)
    private(set) var state = State.open
    private var parser: FrameParser
    private unowned let server: Server
    /// Most bytes allowed to wait in the write queue before the client counts as not reading.
    private let maxBacklog: Int

    /// Complete message bodies not yet handed to the dispatcher (`inboxHead` is the next).
    private var inbox: [[UInt8]] = []
    private var inboxHead = 0
    private var inboxBytes = 0
    /// The dispatcher has not finished the last message handed to it.
    private var busy = false
    private var draining = false
    /// Reading is stopped: messages wait (`.inbox`), the buffer budget is spent (`.budget`) or this
    /// turn's share of reading is (`.turn`).
    private var paused: Pause?
    enum Pause { case inbox, budget, turn }
    /// The loop turn of the last read and the bytes read in it.
    private var readTurn: UInt64 = 0
    private var readThisTurn = 0
    /// Loop time (ms) of the last byte received or sent (or of the connection), for picking the idlest.
    private(set) var lastActivity: UInt64
    /// It has sent at least one complete message.
    private(set) var hasSpoken = false
    /// Loop time (ms) when the unfinished frame's first byte came.
    private var partialSince: UInt64?

    private var stream: UnsafeMutablePointer<uv_stream_t> {
        UnsafeMutableRawPointer(pipe).assumingMemoryBound(to: uv_stream_t.self)
    }
    private var handle: UnsafeMutablePointer<uv_handle_t> {
        UnsafeMutableRawPointer(pipe).assumingMemoryBound(to: uv_handle_t.self)
    }

    /// `pipe` is an accepted, initialised handle; the connection owns it from now on.
    init(peerID: Int, pipe: UnsafeMutablePointer<uv_pipe_t>, server: Server, maxMessageBytes: Int, now: UInt64) {
        self.peerID = peerID
        self.pipe = pipe
        self.server = server
        self.parser = FrameParser(maxMessageBytes: maxMessageBytes)
        self.maxBacklog = max(64 << 20, 4 * maxMessageBytes)
        self.lastActivity = now
        pipe.pointee.data = Unmanaged.passUnretained(self).toOpaque()
    }

    deinit { readBuffer.deallocate() }

    var fd: Int32 {
        var fd: uv_os_fd_t = -1
        _ = uv_fileno(handle, &fd)
        return fd
    }

    var isConnected: Bool { state == .open || state == .halfClosed }

    /// Bytes this connection holds that are not yet dispatched (unfinished frame and waiting messages).
    var bufferedBytes: Int { parser.pendingBytes + inboxBytes }
    var unfinishedFrameBytes: Int { parser.pendingBytes }

    /// Owes the client nothing and holds nothing of it: may be closed to make room for a new client.
    var isIdle: Bool {
        state == .open && !busy && inboxHead == inbox.count && server.dispatcher.inflight(self) == 0
    }

    var writeQueueBytes: Int { uv_stream_get_write_queue_size(stream) }

    /// Bytes from the client wait in the kernel, not read yet (a request on its way).
    var hasInputWaiting: Bool {
        var n: Int32 = 0
        return ioctl(fd, UInt(FIONREAD), &n) == 0 && n > 0
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
            lastActivity = server.now
            if readTurn != server.turn {
                readTurn = server.turn
                readThisTurn = 0
            }
            readThisTurn += n
            let events = parser.feed(UnsafeRawBufferPointer(start: readBuffer, count: n))
            for event in events {
                guard state == .open else { break }
                switch event {
                case .message(let body):
                    hasSpoken = true
                    inbox.append(body)
                    inboxBytes += body.count
                case .tooLarge(let declared):
                    drainInbox()      // what came complete before it is answered first
                    let size = declared.map { "a \($0)-byte frame" } ?? "a frame"
                    Log.warn("peer \(peerID): \(size) exceeds --max-message-bytes \(parser.maxMessageBytes); closing")
                    sendAndClose(.tooLarge(limit: parser.maxMessageBytes))
                case .badHeader(let reason):
                    drainInbox()
                    Log.warn("peer \(peerID): unreadable LSP header (\(reason)); closing")
                    closeAfterFlush()
                }
            }
            if parser.pendingBytes == 0 {
                partialSince = nil
            } else if partialSince == nil {
                partialSince = server.now
            }
            drainInbox()
            updateReading()
        } else if n < 0 {
            if n == Int(UV_EOF.rawValue) && !SocketPath.peerHungUp(fd: fd) {
                // The client closed only its writing side: answer what it asked, then close.
                uv_read_stop(stream)
                paused = nil
                if parser.pendingBytes > 0 {
                    Log.info("peer \(peerID): stopped sending in the middle of a frame (\(parser.pendingBytes) bytes dropped)")
                }
                partialSince = nil
                state = .halfClosed
                closeIfDone()
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

    /// Hands waiting messages to the dispatcher, one at a time.
    private func drainInbox() {
        guard !draining else { return }
        draining = true
        defer { draining = false }
        while !busy, inboxHead < inbox.count, isConnected {
            let body = inbox[inboxHead]
            inbox[inboxHead] = []
            inboxHead += 1
            inboxBytes -= body.count
            if inboxHead == inbox.count {
                inbox.removeAll(keepingCapacity: inbox.count < 1024)
                inboxHead = 0
            }
            busy = true
            let size = body.count
            server.dispatcher.receive(body, from: self) { [weak self] in
                guard let self else { return }
                self.busy = false
                if size >= 1 << 20 { self.server.noteChurn(size) }
                if !self.draining {
                    self.drainInbox()
                    self.updateReading()
                    self.closeIfDone()
                }
            }
        }
    }

    /// Stops or restarts reading: stopped while messages wait or the unfinished frame is over the
    /// budget the server has left.
    func updateReading() {
        guard state == .open else { return }
        let want: Pause?
        if inboxBytes > Connection.maxInboxBytes || (busy && inboxHead < inbox.count) {
            want = .inbox
        } else if parser.pendingBytes > Connection.readBufferSize && server.overBudget {
            want = .budget
        } else if readTurn == server.turn && readThisTurn >= Connection.maxReadPerTurn {
            want = .turn
        } else {
            want = nil
        }
        guard want != paused else { return }
        if want == nil {
            if paused == .inbox && partialSince != nil { partialSince = server.now }   // its clock stood still
            let r = uv_read_start(stream, uvOnAlloc, uvOnRead)
            if r != 0 {
                Log.warn("peer \(peerID): cannot read again: \(String(cString: uv_strerror(r)))")
                server.dispatcher.peerGone(self)
                closeNow()
                return
            }
        } else if paused == nil {
            uv_read_stop(stream)
            if want == .turn { server.resumeNextTurn(self) }
            if want == .budget {
                Log.debug("peer \(peerID): holding \(parser.pendingBytes) bytes of an unfinished frame; stopped reading (--max-pending-bytes)")
            }
        }
        paused = want
    }

    var isPausedForBudget: Bool { paused == .budget }

    /// A new turn of the loop: reading paused for the last turn's share starts again.
    func turnBegan() {
        if paused == .turn { updateReading() }
    }

    /// Called by the server's timer: a half-closed client that has since gone away entirely, or an
    /// unfinished frame older than `--frame-timeout`.
    func tick(now: UInt64, frameTimeout: Int) {
        if state == .halfClosed && SocketPath.peerHungUp(fd: fd) {
            Log.info("peer \(peerID): gone while waiting for replies")
            server.dispatcher.peerGone(self)
            closeNow()
            return
        }
        if state == .open, paused != .inbox, let since = partialSince, now >= since + UInt64(frameTimeout) * 1000 {
            Log.warn("peer \(peerID): a frame unfinished for \(frameTimeout) s (\(parser.pendingBytes) bytes; --frame-timeout); closing")
            sendAndClose(.frameTimeout(seconds: frameTimeout))
        }
    }

    /// The dispatcher owes this client nothing more.
    func idle() {
        closeIfDone()
    }

    /// A half-closed client is closed once nothing of it is left to answer.
    private func closeIfDone() {
        if state == .halfClosed && !busy && inboxHead == inbox.count && server.dispatcher.inflight(self) == 0 {
            closeAfterFlush()
        }
    }

    // MARK: writing

    func send(_ message: JSON) {
        send(serialized: message.serialized())
    }

    func send(serialized body: [UInt8]) {
        guard state == .open || state == .halfClosed else { return }
        let bytes = (parser.framing ?? .line).encode(body)
        if uv_stream_get_write_queue_size(stream) + bytes.count > maxBacklog {
            Log.warn("peer \(peerID): not reading its replies (over \(maxBacklog) bytes queued); closing")
            server.dispatcher.peerGone(self)
            closeNow()
            return
        }
        if bytes.count >= 1 << 20 { server.noteChurn(bytes.count) }
        lastActivity = server.now
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

    /// Tells the client why (an error with id null, in its framing) and closes after sending it.
    func sendAndClose(_ error: RPCError) {
        guard state == .open || state == .halfClosed else { return }
        send(RPCOutgoing.error(id: .null, error))
        closeAfterFlush()
    }

    /// Stops reading, cancels the client's jobs, sends what is queued, then closes.
    func closeAfterFlush() {
        guard state == .open || state == .halfClosed else { return }
        server.dispatcher.peerGone(self)
        state = .closing
        releaseBuffers()
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
        releaseBuffers()
        uv_close(handle, uvOnConnectionClosed)
    }

    /// Drops what was received and not dispatched (the server may trim the heap after big ones).
    private func releaseBuffers() {
        let held = parser.pendingBytes + inboxBytes
        parser = FrameParser(maxMessageBytes: parser.maxMessageBytes, framing: parser.framing)
        inbox = []
        inboxHead = 0
        inboxBytes = 0
        partialSince = nil
        if held >= 1 << 20 { server.noteChurn(held) }
    }

    func didClose() {
        state = .closed
        server.connectionClosed(self)
        UnsafeMutableRawPointer(pipe).deallocate()
    }
}
