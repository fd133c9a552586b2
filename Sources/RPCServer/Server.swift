import CUV
import Foundation

/// The libuv side of the server: the listening socket, client connections, the worker's wake-up
/// handle, signals and timers. Everything runs on the thread that calls `run` (the loop thread).
public final class Server: DispatcherHost {
    public let options: ServerOptions
    public let info: ServerInfo
    public let dispatcher: Dispatcher
    let loop: UnsafeMutablePointer<uv_loop_t>

    private var listener: UnsafeMutablePointer<uv_pipe_t>?
    private var wakeHandle: UnsafeMutablePointer<uv_async_t>?
    private var signalHandles: [UnsafeMutablePointer<uv_signal_t>] = []
    private var ticker: UnsafeMutablePointer<uv_timer_t>?
    private var deadline: UnsafeMutablePointer<uv_timer_t>?
    private var connections: [Int: Connection] = [:]
    private var nextPeerID = 1
    private var socketIdentity: SocketPath.FileIdentity?
    private var exiting = false
    private var everythingClosed = false
    private var signalCount = 0
    public private(set) var exitCode: Int32 = 0

    public var connectionCount: Int { connections.count }

    /// Builds the scheduler and the dispatcher around a fresh libuv loop.
    public init(options: ServerOptions, info: ServerInfo, methods: MethodTable, hooks: ServerHooks = ServerHooks()) {
        self.options = options
        self.info = info
        loop = uv_default_loop()
        let wake = UnsafeMutablePointer<uv_async_t>.allocate(capacity: 1)
        wakeHandle = wake
        let scheduler = Scheduler(maxJobs: options.maxQueue, checkpointEvery: options.checkpointEvery,
                                  afterWork: hooks.afterWork) { uv_async_send(wake) }
        dispatcher = Dispatcher(methods: methods, scheduler: scheduler, checkpoint: hooks.checkpoint)
        dispatcher.host = self
    }

    /// Binds the socket (after clearing a stale one), starts the worker and runs the loop until the
    /// server exits. Returns the process exit code.
    public func run() throws -> Int32 {
        let me = Unmanaged.passUnretained(self).toOpaque()
        let wake = wakeHandle!
        uv_async_init(loop, wake, uvOnAsync)
        wake.pointee.data = me

        // Signals before the socket: a client may connect as soon as it listens and a supervisor may
        // then send SIGTERM at once, which without the handler would kill the daemon uncleanly (seen in
        // CI). A signal that comes before the loop runs waits in libuv until it does.
        for signum in [SIGTERM, SIGINT] {
            let h = UnsafeMutablePointer<uv_signal_t>.allocate(capacity: 1)
            uv_signal_init(loop, h)
            h.pointee.data = me
            uv_signal_start(h, uvOnSignal, signum)
            signalHandles.append(h)
        }

        try listen()
        let t = UnsafeMutablePointer<uv_timer_t>.allocate(capacity: 1)
        uv_timer_init(loop, t)
        t.pointee.data = me
        uv_timer_start(t, uvOnTick, 250, 250)
        ticker = t

        dispatcher.scheduler.start()
        Log.info("\(info.name) \(info.version) listening on \(options.socketPath) (pid \(getpid()), "
                 + "methods: \(dispatcher.methods.names.joined(separator: ", ")))")
        uv_run(loop, UV_RUN_DEFAULT)
        uv_loop_close(loop)
        return exitCode
    }

    private func listen() throws {
        let path = options.socketPath
        try SocketPath.prepare(path, isDefault: path == options.defaultSocketPath, server: info.name)
        let l = UnsafeMutablePointer<uv_pipe_t>.allocate(capacity: 1)
        uv_pipe_init(loop, l, 0)
        l.pointee.data = Unmanaged.passUnretained(self).toOpaque()
        listener = l
        let old = umask(0o177)          // the socket is born 0600: no window where others can connect
        let r = uv_pipe_bind(l, path)
        umask(old)
        guard r == 0 else {
            throw SocketPath.Refusal(description: "cannot bind \(path): \(String(cString: uv_strerror(r)))")
        }
        chmod(path, 0o600)
        socketIdentity = SocketPath.identity(path)
        let stream = UnsafeMutableRawPointer(l).assumingMemoryBound(to: uv_stream_t.self)
        let lr = uv_listen(stream, 128, uvOnConnection)
        guard lr == 0 else {
            throw SocketPath.Refusal(description: "cannot listen on \(path): \(String(cString: uv_strerror(lr)))")
        }
    }

    // MARK: connections

    func accept(status: Int32) {
        guard status == 0, let listener else {
            Log.warn("accept failed: \(String(cString: uv_strerror(status)))")
            return
        }
        let pipe = UnsafeMutablePointer<uv_pipe_t>.allocate(capacity: 1)
        uv_pipe_init(loop, pipe, 0)
        pipe.pointee.data = nil
        let handle = UnsafeMutableRawPointer(pipe).assumingMemoryBound(to: uv_handle_t.self)
        guard uv_accept(UnsafeMutableRawPointer(listener).assumingMemoryBound(to: uv_stream_t.self),
                        UnsafeMutableRawPointer(pipe).assumingMemoryBound(to: uv_stream_t.self)) == 0 else {
            uv_close(handle, uvFreeOnClose)
            return
        }
        var fd: uv_os_fd_t = -1
        uv_fileno(handle, &fd)
        let uid = SocketPath.peerUID(fd: fd)
        guard let uid, uid == geteuid() else {
            Log.warn("refused a connection from uid \(uid.map { String($0) } ?? "unknown") (only uid \(geteuid()) may connect)")
            uv_close(handle, uvFreeOnClose)
            return
        }
        guard !exiting else {
            uv_close(handle, uvFreeOnClose)
            return
        }
        guard connections.count < options.maxConnections else {
            Log.warn("refused a connection: \(connections.count) clients connected (--max-connections \(options.maxConnections))")
            uv_close(handle, uvFreeOnClose)
            return
        }
        let c = Connection(peerID: nextPeerID, pipe: pipe, server: self, maxMessageBytes: options.maxMessageBytes)
        nextPeerID += 1
        connections[c.peerID] = c
        Log.debug("peer \(c.peerID): connected")
        c.start()
    }

    func connectionClosed(_ c: Connection) {
        connections.removeValue(forKey: c.peerID)
        if exiting && connections.isEmpty { closeEverything() }
    }

    public func peerIdle(_ peer: Peer) {
        connections[peer.peerID]?.idle()
    }

    // MARK: wake-ups, timers, signals

    func workerWoke() {
        dispatcher.pumpSchedulerEvents()
    }

    func tick() {
        for c in connections.values where c.state == .halfClosed { c.checkHangUp() }
    }

    func signalled(_ signum: Int32) {
        signalCount += 1
        let name = signum == SIGTERM ? "SIGTERM" : signum == SIGINT ? "SIGINT" : "signal \(signum)"
        if signalCount > 1 {
            Log.warn("\(name) again: exiting without waiting for the worker")
            removeSocketFile()
            exit(1)
        }
        Log.info("\(name): shutting down")
        dispatcher.shutdown { [weak self] in self?.finish(code: 0) }
    }

    public func exitRequested(code: Int32) {
        dispatcher.shutdown { [weak self] in self?.finish(code: code) }
    }

    // MARK: exit

    /// After shutdown: stop the worker, send the last replies, close every connection (flushing),
    /// remove the socket file, and let the loop end (forcibly after 2 s if a client does not read).
    private func finish(code: Int32) {
        guard !exiting else { return }
        exiting = true
        exitCode = code
        dispatcher.scheduler.stop()
        dispatcher.pumpSchedulerEvents()
        if let l = listener {
            forgetSocketName(l)
            uv_close(UnsafeMutableRawPointer(l).assumingMemoryBound(to: uv_handle_t.self), uvFreeOnClose)
            listener = nil
        }
        removeSocketFile()
        for c in Array(connections.values) { c.closeAfterFlush() }
        let t = UnsafeMutablePointer<uv_timer_t>.allocate(capacity: 1)
        uv_timer_init(loop, t)
        t.pointee.data = Unmanaged.passUnretained(self).toOpaque()
        uv_timer_start(t, uvOnExitDeadline, 2000, 0)
        deadline = t
        if connections.isEmpty { closeEverything() }
        Log.info("exiting with code \(code)")
    }

    func closeEverything() {
        guard !everythingClosed else { return }
        everythingClosed = true
        for c in Array(connections.values) { c.closeNow() }
        func close<T>(_ p: UnsafeMutablePointer<T>?) {
            guard let p else { return }
            let h = UnsafeMutableRawPointer(p).assumingMemoryBound(to: uv_handle_t.self)
            if uv_is_closing(h) == 0 { uv_close(h, uvFreeOnClose) }
        }
        if let l = listener { forgetSocketName(l) }
        close(listener); listener = nil
        close(wakeHandle); wakeHandle = nil
        for h in signalHandles { close(h) }
        signalHandles = []
        close(ticker); ticker = nil
        close(deadline); deadline = nil
    }

    /// libuv unlinks a bound pipe's path when the handle closes, whoever's file is there by then; the
    /// server removes its socket itself (only if it is still its own), so libuv must forget the name.
    private func forgetSocketName(_ l: UnsafeMutablePointer<uv_pipe_t>) {
        if let name = l.pointee.pipe_fname {
            free(UnsafeMutableRawPointer(mutating: name))
            l.pointee.pipe_fname = nil
        }
    }

    private func removeSocketFile() {
        let path = options.socketPath
        if let id = socketIdentity, SocketPath.identity(path) == id {
            unlink(path)
        }
        socketIdentity = nil
    }
}
