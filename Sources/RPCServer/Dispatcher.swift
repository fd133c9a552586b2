import Foundation

/// One client connection as the dispatcher sees it.
public protocol Peer: AnyObject {
    var peerID: Int { get }
    /// Frames and sends one message (a no-op once the connection is closed).
    func send(_ message: JSON)
    /// Frames and sends one message already serialized (replies, whose size the dispatcher checks).
    func send(serialized body: [UInt8])
    /// False once the connection is closing: what it still sent is dropped, not run.
    var isConnected: Bool { get }
}

extension Peer {
    public func send(serialized body: [UInt8]) {
        if let message = try? JSON.parse(body) { send(message) }
    }
    public var isConnected: Bool { true }
}

/// What the dispatcher needs from the process hosting it (the libuv server, or a test).
public protocol DispatcherHost: AnyObject {
    /// `exit` arrived: end the process with this code (LSP: 0 after `shutdown`, 1 without).
    func exitRequested(code: Int32)
    /// The peer has no request left in flight (a half-closed connection may now close).
    func peerIdle(_ peer: Peer)
    /// Open client connections, for `status`.
    var connectionCount: Int { get }
    /// How busy the event loop has been (`status`'s `loop`), if the host measures it.
    var loopStatus: JSON? { get }
    /// Runs `work` off the loop thread (big messages are parsed there), then `completion` with its
    /// result on the loop thread.
    func background(_ work: @escaping () -> Any, completion: @escaping (Any) -> Void)
    /// Calls `slice` on later turns of the loop, between reads of every client, until it returns true
    /// (a batch is worked through a slice at a time).
    func slices(_ slice: @escaping () -> Bool)
}

extension DispatcherHost {
    public var loopStatus: JSON? { nil }
    public func background(_ work: @escaping () -> Any, completion: @escaping (Any) -> Void) { completion(work()) }
    public func slices(_ slice: @escaping () -> Bool) { while !slice() {} }
}

/// The dispatcher's limits on what one message may cost (`ServerOptions`).
public struct DispatchLimits: Sendable {
    /// Requests in one batch.
    public var maxBatch = 1000
    /// Bytes of one reply (a batch's replies together).
    public var maxReplyBytes = 64 << 20
    /// Messages at least this big are parsed off the loop thread.
    public var offLoopBytes = 256 << 10
    /// Loop time one slice of a batch may take.
    public var sliceSeconds = 0.001

    public init(maxBatch: Int = 1000, maxReplyBytes: Int = 64 << 20) {
        self.maxBatch = maxBatch
        self.maxReplyBytes = maxReplyBytes
    }
}

/// What an application plugs into the server besides its methods.
public struct ServerHooks {
    /// Worker thread, after units and tasks: refreshes what immediate methods read without waiting
    /// for the worker (a summary that `status` shows).
    public var afterWork: () -> Void
    /// Worker thread, at shutdown, after the jobs' checkpoints and before they are stopped: saves the
    /// application's state; returns the failures (logged).
    public var checkpoint: () -> [JSON]
    /// Loop thread, about four times a second while the server runs: the application's own timers
    /// (erudiffd unloads models whose keep-alive has passed, through `Dispatcher.onWorker`).
    public var periodic: (Dispatcher) -> Void

    public init(afterWork: @escaping () -> Void = {}, checkpoint: @escaping () -> [JSON] = { [] },
                periodic: @escaping (Dispatcher) -> Void = { _ in }) {
        self.afterWork = afterWork
        self.checkpoint = checkpoint
        self.periodic = periodic
    }
}

/// JSON-RPC 2.0 on the loop thread: validates messages, answers batches, routes methods through the
/// method table, submits jobs to the scheduler, turns scheduler events into replies and `$/progress`
/// notifications, handles `$/cancelRequest` and the LSP lifecycle. Everything here runs on one thread.
public final class Dispatcher {
    public enum Lifecycle: String { case running, shuttingDown, shutDown }

    public let methods: MethodTable
    public let scheduler: Scheduler
    public let limits: DispatchLimits
    private let checkpoint: () -> [JSON]
    public weak var host: DispatcherHost?
    public let startTime = Date()
    public private(set) var lifecycle = Lifecycle.running

    private final class PeerState {
        var pending: [RPCID: Int] = [:]   // request id → job id
        var inflight = 0                  // replies still owed
    }

    private final class JobRecord {
        let jobID: Int
        let peerID: Int
        let requestID: RPCID?
        let token: JSON?
        var peer: Peer?
        var reply: (JSON?) -> Void
        var lastPercent = 0
        init(jobID: Int, peer: Peer, requestID: RPCID?, token: JSON?, reply: @escaping (JSON?) -> Void) {
            self.jobID = jobID
            self.peerID = peer.peerID
            self.peer = peer
            self.requestID = requestID
            self.token = token
            self.reply = reply
        }
    }

    private var peers: [Int: PeerState] = [:]
    private var jobs: [Int: JobRecord] = [:]
    private var taskCompletions: [Int: (Result<JSON, Error>) -> Void] = [:]
    private var shutdownWaiters: [() -> Void] = []

    /// `checkpoint`: `ServerHooks.checkpoint`.
    public init(methods: MethodTable, scheduler: Scheduler, limits: DispatchLimits = DispatchLimits(),
                checkpoint: @escaping () -> [JSON] = { [] }) {
        self.methods = methods
        self.scheduler = scheduler
        self.limits = limits
        self.checkpoint = checkpoint
    }

    public var uptimeMs: Int64 { Int64(Date().timeIntervalSince(startTime) * 1000) }

    // MARK: incoming

    /// Handles one complete message body from `peer`; `done` is called (on the loop thread) once every
    /// request in it has been dispatched — at once for a small message, later for a big one (parsed
    /// off the loop) or a batch (dispatched a slice at a time between other clients' reads). The
    /// connection hands over its next message only then, so a client's messages keep their order.
    public func receive(_ body: [UInt8], from peer: Peer, done: @escaping () -> Void = {}) {
        let limits = self.limits
        if body.count >= limits.offLoopBytes, let host {
            host.background({ Incoming(body, maxBatch: limits.maxBatch) }) { [weak self] incoming in
                guard let self, peer.isConnected, let incoming = incoming as? Incoming else { done(); return }
                self.receive(incoming, from: peer, done: done)
            }
        } else {
            receive(Incoming(body, maxBatch: limits.maxBatch), from: peer, done: done)
        }
    }

    /// A message body as JSON, or why it is not one; a batch over the limit is counted, not parsed.
    enum Incoming {
        case message(JSON)
        case parseError(String)
        case batchTooLarge(Int)

        init(_ body: [UInt8], maxBatch: Int) {
            if let n = Incoming.batchLength(body), n > maxBatch {
                self = .batchTooLarge(n)
                return
            }
            do { self = .message(try JSON.parse(body)) } catch { self = .parseError("\(error)") }
        }

        /// The number of elements if `body` is an array at the top level (a cheap scan that trusts the
        /// brackets and quotes; the parse finds any other fault), else nil.
        static func batchLength(_ body: [UInt8]) -> Int? {
            body.withUnsafeBufferPointer { b -> Int? in
                var i = 0
                while i < b.count, b[i] == 32 || b[i] == 9 || b[i] == 10 || b[i] == 13 { i += 1 }
                guard i < b.count, b[i] == UInt8(ascii: "[") else { return nil }
                var depth = 0, commas = 0, inString = false, sawElement = false
                while i < b.count {
                    let c = b[i]
                    if inString {
                        if c == UInt8(ascii: "\\") { i += 1 } else if c == UInt8(ascii: "\"") { inString = false }
                    } else {
                        switch c {
                        case UInt8(ascii: "\""): inString = true; if depth == 1 { sawElement = true }
                        case UInt8(ascii: "["), UInt8(ascii: "{"):
                            if depth == 1 { sawElement = true }
                            depth += 1
                        case UInt8(ascii: "]"), UInt8(ascii: "}"):
                            depth -= 1
                            if depth == 0 { return sawElement ? commas + 1 : 0 }
                        case UInt8(ascii: ","): if depth == 1 { commas += 1 }
                        case 32, 9, 10, 13: break
                        default: if depth == 1 { sawElement = true }
                        }
                    }
                    i += 1
                }
                return sawElement ? commas + 1 : 0
            }
        }
    }

    private func receive(_ incoming: Incoming, from peer: Peer, done: @escaping () -> Void) {
        switch incoming {
        case .parseError(let message):
            peer.send(RPCOutgoing.error(id: .null, .parseError(message)))
            done()
        case .batchTooLarge(let n):
            Log.warn("peer \(peer.peerID): refused a batch of \(n) requests (--max-batch \(limits.maxBatch))")
            peer.send(RPCOutgoing.error(id: .null, .batchTooLarge(count: n, limit: limits.maxBatch)))
            done()
        case .message(.array(let items)):
            guard !items.isEmpty else {
                peer.send(RPCOutgoing.error(id: .null, .invalidRequest("an empty batch")))
                done()
                return
            }
            guard items.count <= limits.maxBatch else {
                peer.send(RPCOutgoing.error(id: .null, .batchTooLarge(count: items.count, limit: limits.maxBatch)))
                done()
                return
            }
            runBatch(items, from: peer, done: done)
        case .message(let json):
            handle(json, from: peer) { [weak self] in if let r = $0 { self?.deliver(r, to: peer) } }
            done()
        }
    }

    /// Dispatches a batch's elements in slices of about `limits.sliceSeconds` of loop time; once the
    /// replies passed `maxReplyBytes`, the elements not yet run are answered -32005 instead.
    private func runBatch(_ items: [JSON], from peer: Peer, done: @escaping () -> Void) {
        let batch = Batch(count: items.count, peer: peer, maxBytes: limits.maxReplyBytes)
        var next = 0
        let slice = limits.sliceSeconds
        let work: () -> Bool = { [weak self] in
            guard let self, peer.isConnected else { done(); return true }
            let start = DispatchTime.now().uptimeNanoseconds
            while next < items.count {
                let i = next
                next += 1
                if batch.overflowed {
                    batch.skip(i, items[i])
                } else {
                    self.handle(items[i], from: peer) { batch.fill(i, $0) }
                }
                if Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 >= slice && next < items.count { return false }
            }
            done()
            return true
        }
        if let host { host.slices(work) } else { while !work() {} }
    }

    /// Serializes one reply and sends it, or -32005 in its place when it is over `maxReplyBytes`.
    private func deliver(_ reply: JSON, to peer: Peer) {
        let bytes = reply.serialized()
        guard bytes.count > limits.maxReplyBytes else {
            peer.send(serialized: bytes)
            return
        }
        let id = reply["id"].flatMap(RPCID.init) ?? .null
        Log.warn("peer \(peer.peerID): a reply of \(bytes.count) bytes is over --max-reply-bytes \(limits.maxReplyBytes)")
        peer.send(RPCOutgoing.error(id: id, .replyTooLarge(bytes: bytes.count, limit: limits.maxReplyBytes)))
    }

    /// Collects the replies of one batch (serialized as they come, counting their bytes) and sends them
    /// together; notifications leave no slot, and a batch of notifications only gets no reply at all.
    private final class Batch {
        var slots: [[UInt8]?]
        var remaining: Int
        var bytes = 2
        let maxBytes: Int
        let peer: Peer
        /// The replies so far passed `maxBytes`.
        private(set) var overflowed = false
        init(count: Int, peer: Peer, maxBytes: Int) {
            slots = Array(repeating: nil, count: count)
            remaining = count
            self.peer = peer
            self.maxBytes = maxBytes
        }
        func fill(_ i: Int, _ reply: JSON?) {
            if let reply {
                var body = reply.serialized()
                if bytes + body.count + 1 > maxBytes {
                    let id = reply["id"].flatMap(RPCID.init) ?? .null
                    body = RPCOutgoing.error(id: id, .replyTooLarge(bytes: body.count, limit: maxBytes)).serialized()
                    if !overflowed {
                        Log.warn("peer \(peer.peerID): a batch's replies passed --max-reply-bytes \(maxBytes)")
                    }
                    overflowed = true
                }
                bytes += body.count + 1
                slots[i] = body
            }
            remaining -= 1
            if remaining == 0 {
                let replies = slots.compactMap { $0 }
                guard !replies.isEmpty else { return }
                var out: [UInt8] = []
                out.reserveCapacity(bytes)
                out.append(UInt8(ascii: "["))
                for (k, r) in replies.enumerated() {
                    if k > 0 { out.append(UInt8(ascii: ",")) }
                    out.append(contentsOf: r)
                }
                out.append(UInt8(ascii: "]"))
                peer.send(serialized: out)
            }
        }
        /// Element `i` is not run: the replies are already too big.
        func skip(_ i: Int, _ item: JSON) {
            switch RPCRequest.decode(item) {
            case .request(let r) where r.id != nil:
                fill(i, RPCOutgoing.error(id: r.id!, .replyTooLarge(bytes: nil, limit: maxBytes)))
            case .invalid(let error, let id):
                fill(i, RPCOutgoing.error(id: id, error))
            default:
                fill(i, nil)
            }
        }
    }

    /// One request, notification or invalid element; `reply` is called exactly once (nil: no reply).
    private func handle(_ json: JSON, from peer: Peer, reply: @escaping (JSON?) -> Void) {
        switch RPCRequest.decode(json) {
        case .invalid(let error, let id):
            reply(RPCOutgoing.error(id: id, error))
        case .response:
            Log.debug("peer \(peer.peerID): ignored a response object (the server sends no requests)")
            reply(nil)
        case .request(let request):
            dispatch(request, from: peer, reply: reply)
        }
    }

    private func dispatch(_ request: RPCRequest, from peer: Peer, reply: @escaping (JSON?) -> Void) {
        let id = request.id
        guard peer.isConnected else { reply(nil); return }
        func answer(_ result: Result<JSON, RPCError>) {
            guard let id else { reply(nil); return }
            switch result {
            case .success(let value): reply(RPCOutgoing.result(id: id, value))
            case .failure(let error): reply(RPCOutgoing.error(id: id, error))
            }
        }

        if lifecycle != .running && request.method != "exit" && request.method != "shutdown" {
            if !request.method.hasPrefix("$/") {
                Log.debug("peer \(peer.peerID): \(RPCError.shortened(request.method)) refused after shutdown")
            }
            answer(.failure(.invalidRequest("the server has been shut down; only \"exit\" is accepted")))
            return
        }
        switch request.method {
        case "$/cancelRequest":
            cancelRequest(request.params, from: peer, answer: answer)
            return
        case "exit":
            answer(.success(.null))
            host?.exitRequested(code: lifecycle == .running ? 1 : 0)
            return
        case "initialized":
            answer(.success(.null))
            return
        default:
            break
        }
        guard let entry = methods.lookup(request.method) else {
            if id == nil {
                if !request.method.hasPrefix("$/") { Log.debug("peer \(peer.peerID): unknown notification \(RPCError.shortened(request.method))") }
                reply(nil)
            } else {
                answer(.failure(.methodNotFound(request.method)))
            }
            return
        }
        let params: Params
        let token: JSON?
        do {
            params = try Params(method: request.method, request.params)
            token = params.values["workDoneToken"]
            if let token {
                switch token {
                case .string, .int: break
                default: throw RPCError.invalidParams("\"workDoneToken\" must be a string or an integer, got \(Params.describe(token))")
                }
            }
        } catch {
            answer(.failure(Self.rpcError(error)))
            return
        }
        let context = MethodContext(dispatcher: self)
        let ps = peerState(peer)
        switch entry.kind {
        case .immediate(let handler):
            do {
                let value = try handler(context, params)
                try params.finish()
                answer(.success(value))
            } catch {
                answer(.failure(Self.rpcError(error)))
            }
        case .job(let factory):
            if let id, ps.pending[id] != nil {
                answer(.failure(.invalidRequest("id \(id) is already used by a request in progress")))
                return
            }
            let job: Job
            let jobID: Int
            do {
                job = try factory(context, params)
                try params.finish()
                jobID = try scheduler.submit(method: request.method, job: job)
            } catch {
                answer(.failure(Self.rpcError(error)))
                return
            }
            let record = JobRecord(jobID: jobID, peer: peer, requestID: id, token: token, reply: reply)
            jobs[jobID] = record
            if let id {
                ps.pending[id] = jobID
                ps.inflight += 1
            } else {
                reply(nil)            // a notification: the work runs, nobody waits for it
                record.reply = { _ in }
            }
            Log.debug("peer \(peer.peerID): job \(jobID) \(request.method) admitted")
            if let token {
                peer.send(RPCOutgoing.notification("$/progress", [
                    "token": token,
                    "value": ["kind": "begin", "title": .string(job.title), "cancellable": true,
                              "percentage": 0, "message": "queued"],
                ]))
            }
        case .deferred(let handler):
            ps.inflight += 1
            do {
                try handler(context, params) { [weak self] result in
                    answer(result)
                    self?.replied(peerID: peer.peerID, peer: peer)
                }
            } catch {
                answer(.failure(Self.rpcError(error)))
                replied(peerID: peer.peerID, peer: peer)
            }
        }
    }

    private func peerState(_ peer: Peer) -> PeerState {
        if let s = peers[peer.peerID] { return s }
        let s = PeerState()
        peers[peer.peerID] = s
        return s
    }

    private func replied(peerID: Int, peer: Peer?) {
        guard let ps = peers[peerID] else { return }
        ps.inflight -= 1
        if ps.inflight == 0, let peer { host?.peerIdle(peer) }
    }

    /// Replies still owed to this peer.
    public func inflight(_ peer: Peer) -> Int { peers[peer.peerID]?.inflight ?? 0 }

    static func rpcError(_ error: Error) -> RPCError {
        if let e = error as? RPCError { return e }
        if let e = error as? RPCErrorConvertible { return e.rpcError }
        return .internalError(String(describing: error))
    }

    // MARK: cancellation

    private func cancelRequest(_ raw: JSON?, from peer: Peer, answer: (Result<JSON, RPCError>) -> Void) {
        guard case .object(let o)? = raw, let idValue = o["id"], let target = RPCID(idValue), target != .null else {
            answer(.failure(.invalidParams("\"id\" is required: the id (a string or a number) of the request to cancel")))
            return
        }
        answer(.success(.null))
        guard let jobID = peers[peer.peerID]?.pending[target] else {
            Log.debug("peer \(peer.peerID): $/cancelRequest for \(target), which is not in progress")
            return
        }
        switch scheduler.cancel(jobID) {
        case .removed:
            complete(jobID, .failure(.requestCancelled))
        case .flagged, .notFound:
            break   // a .stopped (or .finished) event follows
        }
    }

    /// The connection is gone: its jobs are cancelled and their results dropped.
    public func peerGone(_ peer: Peer) {
        guard let ps = peers.removeValue(forKey: peer.peerID) else { return }
        for jobID in jobs.values.filter({ $0.peerID == peer.peerID }).map(\.jobID) {
            guard let record = jobs[jobID] else { continue }
            record.peer = nil
            record.reply = { _ in }
            if scheduler.cancel(jobID) == .removed { jobs.removeValue(forKey: jobID) }
        }
        if !ps.pending.isEmpty { Log.info("peer \(peer.peerID) gone: cancelled \(ps.pending.count) request(s)") }
    }

    // MARK: scheduler events

    /// Drains the scheduler's events (loop thread, from the wake callback).
    /// Job events are handled before task completions of the same batch, so that a completion that
    /// ends the daemon (shutdown) comes after the replies of the jobs that stopped before it.
    public func pumpSchedulerEvents() {
        var finishedTasks: [((Result<JSON, Error>) -> Void, Result<JSON, Error>)] = []
        defer { for (completion, result) in finishedTasks { completion(result) } }
        for event in scheduler.drain() {
            switch event {
            case .progress(let jobID, let fraction, let message):
                progress(jobID, fraction: fraction, message: message)
            case .finished(let jobID, let result):
                complete(jobID, result.mapError(Self.rpcError))
            case .stopped(let jobID, let reason, let data):
                let e: RPCError = reason == .shutdown ? .shuttingDown("the request was stopped by shutdown")
                                                      : .requestCancelled
                complete(jobID, .failure(RPCError(code: e.code, message: e.message, data: data)))
            case .task(let id, let result):
                if let completion = taskCompletions.removeValue(forKey: id) { finishedTasks.append((completion, result)) }
            }
        }
    }

    private func progress(_ jobID: Int, fraction: Double, message: String?) {
        guard let r = jobs[jobID], let token = r.token, let peer = r.peer else { return }
        let percent = min(100, max(0, Int(fraction * 100)))
        guard percent > r.lastPercent else { return }
        r.lastPercent = percent
        var value: [String: JSON] = ["kind": "report", "percentage": .int(Int64(percent)), "cancellable": true]
        value["message"] = .string(message ?? "\(percent)%")
        peer.send(RPCOutgoing.notification("$/progress", ["token": token, "value": .object(value)]))
    }

    private func complete(_ jobID: Int, _ result: Result<JSON, RPCError>) {
        guard let r = jobs.removeValue(forKey: jobID) else { return }
        if let peer = r.peer, let ps = peers[r.peerID] {
            if let id = r.requestID { ps.pending.removeValue(forKey: id) }
            if let token = r.token {
                let message: String
                switch result {
                case .success: message = "done"
                case .failure(let e) where e.code == RPCError.requestCancelledCode: message = "cancelled"
                case .failure(let e): message = e.message
                }
                peer.send(RPCOutgoing.notification("$/progress", ["token": token, "value": ["kind": "end", "message": .string(message)]]))
            }
            if let id = r.requestID {
                switch result {
                case .success(let v): r.reply(RPCOutgoing.result(id: id, v))
                case .failure(let e): r.reply(RPCOutgoing.error(id: id, e))
                }
                replied(peerID: r.peerID, peer: peer)
            }
        }
    }

    /// Runs `body` on the worker between units and calls `completion` on the loop thread with its result.
    public func onWorker(_ body: @escaping () throws -> JSON, completion: @escaping (Result<JSON, Error>) -> Void) {
        let id = scheduler.perform(body)
        taskCompletions[id] = completion
    }

    // MARK: lifecycle

    /// LSP `shutdown` (also used by `exit` without it and by SIGTERM): stop admitting requests,
    /// checkpoint running jobs and the application's state (`ServerHooks.checkpoint`) on the worker,
    /// stop every job (`-32003`), then call `completion`. Idempotent: later callers wait for the same shutdown.
    public func shutdown(completion: @escaping () -> Void) {
        shutdownWaiters.append(completion)
        switch lifecycle {
        case .shutDown:
            let waiters = shutdownWaiters
            shutdownWaiters = []
            waiters.forEach { $0() }
            return
        case .shuttingDown:
            return
        case .running:
            break
        }
        lifecycle = .shuttingDown
        Log.info("shutting down: checkpointing \(scheduler.jobIDs.count) job(s)")
        let scheduler = self.scheduler, checkpoint = self.checkpoint
        onWorker({
            var failures: [JSON] = scheduler.checkpointJobs().map { ["job": .int(Int64($0.0)), "error": .string("\($0.1)")] }
            failures += checkpoint()
            scheduler.cancelAll(reason: .shutdown)
            return .array(failures)
        }, completion: { [weak self] result in
            guard let self else { return }
            switch result {
            case .success(.array(let failures)) where !failures.isEmpty:
                for f in failures { Log.error("checkpoint at shutdown failed: \(f.text)") }
            case .failure(let error):
                Log.error("checkpoint at shutdown failed: \(error)")
            default:
                Log.info("checkpoint at shutdown done")
            }
            self.lifecycle = .shutDown
            let waiters = self.shutdownWaiters
            self.shutdownWaiters = []
            waiters.forEach { $0() }
        })
    }
}
