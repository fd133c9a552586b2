import CUV
import Foundation

/// The libuv side of the server: the listening socket, client connections, the worker's wake-up
/// handle, signals and timers, the slices of batches between reads and a helper thread for work too
/// big for the loop (parsing big messages, trimming the heap). Everything here runs on the thread that
/// calls `run` (the loop thread).
///
/// Room for clients: at `--max-connections`, a new client takes the place of the connection idle the
/// longest (nothing owed to it, nothing of it waiting), which first gets a -32001 error saying so; if
/// every connection is busy the new client gets that error and is closed. Unfinished frames older than
/// `--frame-timeout` get -32006 and their connection is closed; past `--max-pending-bytes` of unfinished
/// frames the server stops reading from the clients that hold them (the bytes wait in the kernel).
///
/// Idle exit (`--idle-exit`): once no client has been connected and no job admitted for that long, the
/// server stops listening and exits as after `shutdown` (the application's checkpoint hook runs). It
/// first takes the clients' start lock (`<socket>.lock`, flock) and keeps it until the process ends: a
/// client that finds no daemon takes that lock before it starts one, so the next daemon starts only
/// after this one has saved everything. A client that holds the lock, or a connection waiting to be
/// accepted, puts the exit off.
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
    private var idler: UnsafeMutablePointer<uv_idle_t>?
    private var turnEnd: UnsafeMutablePointer<uv_prepare_t>?
    /// The clock and libuv's count of time blocked in the poll when the previous turn ended; a turn's
    /// busy time is the wall time between two ends less the time blocked between them, so it includes
    /// the I/O callbacks (accepts, reads, dispatch), where the work is.
    private var lastTurnEndNs: UInt64 = 0
    private var lastIdleNs: UInt64 = 0
    /// Turns of the loop so far; connections count their reads per turn against it.
    private(set) var turn: UInt64 = 0
    /// Connections that read their share in this turn and read again in the next.
    private var pausedForTurn: [Connection] = []
    /// Clients accepted in this turn, and whether one waits because the turn's share was taken (libuv
    /// stops watching the socket until it is accepted).
    private var acceptedThisTurn = 0
    private var acceptWaiting = false
    /// New clients accepted in one turn of the loop: a burst of connections is taken a share at a time
    /// between the other clients' reads.
    static let maxAcceptsPerTurn = 16
    private var longestTurnNs: UInt64 = 0
    private var slowTurns = 0
    private var helperWake: UnsafeMutablePointer<uv_async_t>?
    private var helper: HelperThread?
    private var helperCompletions: [Int: (Any) -> Void] = [:]
    private var nextHelperID = 1
    private var slicers: [() -> Bool] = []
    /// Bytes of big buffers freed since the heap was last trimmed, and when the last was noted.
    private var churn = 0
    private var lastChurn: UInt64 = 0
    private var connections: [Int: Connection] = [:]
    private var nextPeerID = 1
    private var socketIdentity: SocketPath.FileIdentity?
    /// The socket served: `--socket`, or where the inherited socket is bound.
    public private(set) var socketPath: String
    /// Serving a socket inherited from a service manager (never unlinked: the manager owns it).
    public private(set) var activated = false
    /// The loop time of the last connection, disconnection or worker event (idle exit counts from it).
    private var lastActivity: UInt64 = 0
    /// The start lock held from the idle exit's decision to the end of the process.
    private var startLock: Int32 = -1
    private let periodic: (Dispatcher) -> Void
    private var exiting = false
    private var everythingClosed = false
    private var signalCount = 0
    public private(set) var exitCode: Int32 = 0

    /// Clients connected (not counting connections being closed).
    public var connectionCount: Int { connections.values.reduce(0) { $0 + ($1.isConnected ? 1 : 0) } }

    /// The loop's clock in milliseconds.
    var now: UInt64 { uv_now(loop) }

    /// Builds the scheduler and the dispatcher around a fresh libuv loop.
    public init(options: ServerOptions, info: ServerInfo, methods: MethodTable, hooks: ServerHooks = ServerHooks()) {
        self.options = options
        self.info = info
        socketPath = options.socketPath
        periodic = hooks.periodic
        loop = uv_default_loop()
        _ = erudiff_uv_measure_idle_time(loop)
        let wake = UnsafeMutablePointer<uv_async_t>.allocate(capacity: 1)
        wakeHandle = wake
        let scheduler = Scheduler(maxJobs: options.maxQueue, checkpointEvery: options.checkpointEvery,
                                  longShare: Double(options.longJobShare) / 100,
                                  afterWork: hooks.afterWork) { uv_async_send(wake) }
        dispatcher = Dispatcher(methods: methods, scheduler: scheduler,
                                limits: DispatchLimits(maxBatch: options.maxBatch, maxReplyBytes: options.maxReplyBytes),
                                checkpoint: hooks.checkpoint)
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
        let hw = UnsafeMutablePointer<uv_async_t>.allocate(capacity: 1)
        uv_async_init(loop, hw, uvOnHelper)
        hw.pointee.data = me
        helperWake = hw
        helper = HelperThread { uv_async_send(hw) }
        let prepare = UnsafeMutablePointer<uv_prepare_t>.allocate(capacity: 1)
        uv_prepare_init(loop, prepare)
        prepare.pointee.data = me
        uv_prepare_start(prepare, uvOnTurnEnd)
        turnEnd = prepare
        let idle = UnsafeMutablePointer<uv_idle_t>.allocate(capacity: 1)
        uv_idle_init(loop, idle)
        idle.pointee.data = me
        idler = idle
        let t = UnsafeMutablePointer<uv_timer_t>.allocate(capacity: 1)
        uv_timer_init(loop, t)
        t.pointee.data = me
        uv_timer_start(t, uvOnTick, 250, 250)
        ticker = t

        dispatcher.scheduler.start()
        lastActivity = now
        let leaves = options.idleExit > 0 ? ", exits after \(DurationText.describe(options.idleExit)) idle" : ""
        Log.info("\(info.name) \(info.version) listening on \(socketPath)\(activated ? " (socket activation)" : "") "
                 + "(pid \(getpid())\(leaves), methods: \(dispatcher.methods.names.joined(separator: ", ")))")
        uv_run(loop, UV_RUN_DEFAULT)
        uv_loop_close(loop)
        return exitCode
    }

    private func listen() throws {
        let l = UnsafeMutablePointer<uv_pipe_t>.allocate(capacity: 1)
        uv_pipe_init(loop, l, 0)
        l.pointee.data = Unmanaged.passUnretained(self).toOpaque()
        listener = l
        let stream = UnsafeMutableRawPointer(l).assumingMemoryBound(to: uv_stream_t.self)
        if let fd = options.inheritedListener {
            let r = uv_pipe_open(l, fd)
            guard r == 0 else {
                throw SocketPath.Refusal(description: "cannot serve the inherited socket (descriptor \(fd)): \(String(cString: uv_strerror(r)))")
            }
            activated = true
            socketPath = SocketActivation.boundPath(fd) ?? "descriptor \(fd)"
            let lr = uv_listen(stream, 1024, uvOnConnection)
            guard lr == 0 else {
                throw SocketPath.Refusal(description: "cannot listen on the inherited socket: \(String(cString: uv_strerror(lr)))")
            }
            return
        }
        let path = options.socketPath
        try SocketPath.prepare(path, isDefault: path == options.defaultSocketPath, server: info.name)
        let old = umask(0o177)          // the socket is born 0600: no window where others can connect
        let r = uv_pipe_bind(l, path)
        umask(old)
        guard r == 0 else {
            throw SocketPath.Refusal(description: "cannot bind \(path): \(String(cString: uv_strerror(r)))")
        }
        chmod(path, 0o600)
        socketIdentity = SocketPath.identity(path)
        let lr = uv_listen(stream, 1024, uvOnConnection)
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
        guard acceptedThisTurn < Server.maxAcceptsPerTurn else {
            acceptWaiting = true
            return
        }
        acceptedThisTurn += 1
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
        let c = Connection(peerID: nextPeerID, pipe: pipe, server: self, maxMessageBytes: options.maxMessageBytes, now: now)
        nextPeerID += 1
        lastActivity = now
        connections[c.peerID] = c
        if connectionCount > options.maxConnections && !makeRoom(for: c) {
            Log.warn("refused a connection: \(options.maxConnections) clients connected, each with a request in progress "
                     + "(--max-connections \(options.maxConnections))")
            c.sendAndClose(.busy("\(options.maxConnections) clients are connected, each with a request in progress; "
                                 + "retry later (--max-connections \(options.maxConnections))",
                                 data: ["maxConnections": .int(Int64(options.maxConnections))]))
            return
        }
        Log.debug("peer \(c.peerID): connected")
        c.start()
    }

    /// Closes an idle connection (nothing owed to it, nothing of it waiting, no request of it on the
    /// way), telling it why, to make room for `newcomer`: first one that never sent a whole message (a
    /// stuck `socat`, a half-sent frame), the idlest first; else the one idle the longest. False when
    /// every other connection is busy.
    private func makeRoom(for newcomer: Connection) -> Bool {
        let idle = connections.values.filter { $0 !== newcomer && $0.isIdle }
            .sorted { ($0.hasSpoken ? 1 : 0, $0.lastActivity, $0.peerID) < ($1.hasSpoken ? 1 : 0, $1.lastActivity, $1.peerID) }
        guard let victim = idle.first(where: { $0.isPausedForBudget || !$0.hasInputWaiting }) else { return false }
        let seconds = Double(now - victim.lastActivity) / 1000
        Log.info("peer \(victim.peerID): closed after \(String(format: "%.1f", seconds)) s idle to make room for a new client "
                 + "(--max-connections \(options.maxConnections))")
        victim.sendAndClose(.busy("closing this connection, idle for \(String(format: "%.1f", seconds)) s, to make room "
                                  + "for a new client (--max-connections \(options.maxConnections)); connect again when needed",
                                  data: ["maxConnections": .int(Int64(options.maxConnections))]))
        return true
    }

    func connectionClosed(_ c: Connection) {
        connections.removeValue(forKey: c.peerID)
        lastActivity = now
        if exiting && connections.isEmpty { closeEverything() }
    }

    // MARK: the loop's own time

    /// A turn of the loop ended (it is about to wait for I/O): how long the loop was busy in it, for
    /// `status` (a turn over 20 ms is logged at debug level).
    func turnEnded() {
        let now = uv_hrtime(), idle = uv_metrics_idle_time(loop)
        defer { lastTurnEndNs = now; lastIdleNs = idle; beginTurn() }
        guard lastTurnEndNs > 0 else { return }
        let wall = now - lastTurnEndNs, blocked = idle - lastIdleNs
        let ns = wall > blocked ? wall - blocked : 0
        longestTurnNs = max(longestTurnNs, ns)
        if ns > 20_000_000 {
            slowTurns += 1
            Log.debug("the event loop was busy for \(ns / 1_000_000) ms in one turn")
        }
    }

    /// Starts the next turn's shares: the clients paused for the last turn read again, and a client
    /// left waiting to be accepted is accepted (which makes libuv watch the socket again).
    private func beginTurn() {
        turn &+= 1
        acceptedThisTurn = 0
        let paused = pausedForTurn
        pausedForTurn = []
        for c in paused { c.turnBegan() }
        if acceptWaiting {
            acceptWaiting = false
            if listener != nil { accept(status: 0) }
        }
    }

    func resumeNextTurn(_ c: Connection) { pausedForTurn.append(c) }

    public var loopStatus: JSON? {
        ["longestTurnMs": .double((Double(longestTurnNs) / 1e4).rounded() / 100), "turnsOver20ms": .int(Int64(slowTurns))]
    }

    // MARK: budgets

    /// Bytes of unfinished frames and undispatched messages held for all clients.
    var bufferedBytes: Int { connections.values.reduce(0) { $0 + $1.bufferedBytes } }

    /// More is held than `--max-pending-bytes`.
    var overBudget: Bool { bufferedBytes > options.maxPendingBytes }

    /// A big buffer was freed (a message, a reply, a dropped frame): the heap is trimmed once they settle.
    func noteChurn(_ bytes: Int) {
        churn += bytes
        lastChurn = now
    }

    // MARK: the helper thread and slices (DispatcherHost)

    public func background(_ work: @escaping () -> Any, completion: @escaping (Any) -> Void) {
        guard let helper, !everythingClosed else { completion(work()); return }
        let id = nextHelperID
        nextHelperID += 1
        helperCompletions[id] = completion
        helper.submit(id: id, work)
    }

    func helperWoke() {
        guard let helper else { return }
        for (id, result) in helper.takeResults() {
            helperCompletions.removeValue(forKey: id)?(result)
        }
    }

    public func slices(_ slice: @escaping () -> Bool) {
        guard let idler, !everythingClosed else { while !slice() {} ; return }
        slicers.append(slice)
        if slicers.count == 1 { uv_idle_start(idler, uvOnIdle) }
    }

    /// Once per turn of the loop (after its reads): a slice of each batch being worked, round-robin,
    /// for at most 2 ms in all; the ones not reached go first next turn.
    func runSlices() {
        let start = DispatchTime.now().uptimeNanoseconds
        let turn = slicers
        slicers = []
        var unfinished: [() -> Bool] = []
        var notReached: [() -> Bool] = []
        for (i, slice) in turn.enumerated() {
            if i > 0 && DispatchTime.now().uptimeNanoseconds - start > 2_000_000 {
                notReached = Array(turn[i...])
                break
            }
            if !slice() { unfinished.append(slice) }
        }
        slicers = notReached + unfinished + slicers
        if slicers.isEmpty, let idler { uv_idle_stop(idler) }
    }

    public func peerIdle(_ peer: Peer) {
        connections[peer.peerID]?.idle()
    }

    // MARK: wake-ups, timers, signals

    func workerWoke() {
        lastActivity = now
        dispatcher.pumpSchedulerEvents()
    }

    func tick() {
        let t = now
        for c in Array(connections.values) { c.tick(now: t, frameTimeout: options.frameTimeout) }
        if !overBudget {
            for c in connections.values where c.isPausedForBudget { c.updateReading() }
        }
        // Big buffers were freed: hand the memory back to the system once they settle (no batch in
        // slices, no big write queued, nothing noted for 200 ms), on the helper thread.
        if churn >= 16 << 20, slicers.isEmpty, t >= lastChurn + 200,
           connections.values.allSatisfy({ $0.writeQueueBytes < 1 << 20 }) {
            churn = 0
            background({ Memory.trim(); return () }, completion: { _ in })
        }
        guard !exiting, dispatcher.lifecycle == .running else { return }
        periodic(dispatcher)
        checkIdleExit()
    }

    // MARK: idle exit

    /// Nothing connected, nothing admitted, nothing being worked through.
    private var isIdle: Bool {
        connections.isEmpty && slicers.isEmpty && helperCompletions.isEmpty && dispatcher.scheduler.isIdle
    }

    /// Exits once idle for `--idle-exit` (see the type's comment): takes the start lock, makes sure no
    /// client waits to be accepted, stops listening, then shuts down as `shutdown` + `exit` would.
    private func checkIdleExit() {
        guard options.idleExit > 0 else { return }
        guard isIdle else {
            lastActivity = now
            return
        }
        let idleMs = now - lastActivity
        guard Double(idleMs) >= options.idleExit * 1000 else { return }
        if !activated && !takeStartLock() {
            Log.debug("idle exit put off: a client holds the start lock \(socketPath).lock")
            lastActivity = now
            return
        }
        if let l = listener, Self.hasWaitingConnection(l) {
            Log.debug("idle exit put off: a client is connecting")
            releaseStartLock()
            lastActivity = now
            return
        }
        Log.info("idle for \(DurationText.describe((Double(idleMs) / 100).rounded() / 10)) with no client and no job "
                 + "(--idle-exit \(DurationText.describe(options.idleExit))): checkpointing and exiting")
        if let l = listener {
            forgetSocketName(l)
            uv_close(UnsafeMutableRawPointer(l).assumingMemoryBound(to: uv_handle_t.self), uvFreeOnClose)
            listener = nil
        }
        removeSocketFile()
        dispatcher.shutdown { [weak self] in self?.finish(code: 0) }
    }

    /// Takes the clients' start lock without waiting; false when a client holds it. Without a lock
    /// file (a directory we cannot write) there is nobody to wait for.
    private func takeStartLock() -> Bool {
        let fd = open(socketPath + ".lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return true }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            close(fd)
            return false
        }
        startLock = fd
        return true
    }

    private func releaseStartLock() {
        if startLock >= 0 { close(startLock) }
        startLock = -1
    }

    /// A connection is in the listener's backlog (it connected since the loop last looked).
    private static func hasWaitingConnection(_ l: UnsafeMutablePointer<uv_pipe_t>) -> Bool {
        var fd: uv_os_fd_t = -1
        guard uv_fileno(UnsafeMutableRawPointer(l).assumingMemoryBound(to: uv_handle_t.self), &fd) == 0 else { return false }
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return poll(&p, 1, 0) > 0 && p.revents & Int16(POLLIN) != 0
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
        close(idler); idler = nil
        close(turnEnd); turnEnd = nil
        slicers = []
        helper?.stop()
        helperWoke()
        close(helperWake); helperWake = nil
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
