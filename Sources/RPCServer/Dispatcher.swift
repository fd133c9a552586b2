import Foundation

/// One client connection as the dispatcher sees it.
public protocol Peer: AnyObject {
    var peerID: Int { get }
    /// Frames and sends one message (a no-op once the connection is closed).
    func send(_ message: JSON)
}

/// What the dispatcher needs from the process hosting it (the libuv server, or a test).
public protocol DispatcherHost: AnyObject {
    /// `exit` arrived: end the process with this code (LSP: 0 after `shutdown`, 1 without).
    func exitRequested(code: Int32)
    /// The peer has no request left in flight (a half-closed connection may now close).
    func peerIdle(_ peer: Peer)
    /// Open client connections, for `status`.
    var connectionCount: Int { get }
}

/// What an application plugs into the server besides its methods.
public struct ServerHooks {
    /// Worker thread, after units and tasks: refreshes what immediate methods read without waiting
    /// for the worker (a summary that `status` shows).
    public var afterWork: () -> Void
    /// Worker thread, at shutdown, after the jobs' checkpoints and before they are stopped: saves the
    /// application's state; returns the failures (logged).
    public var checkpoint: () -> [JSON]

    public init(afterWork: @escaping () -> Void = {}, checkpoint: @escaping () -> [JSON] = { [] }) {
        self.afterWork = afterWork
        self.checkpoint = checkpoint
    }
}

/// JSON-RPC 2.0 on the loop thread: validates messages, answers batches, routes methods through the
/// method table, submits jobs to the scheduler, turns scheduler events into replies and `$/progress`
/// notifications, handles `$/cancelRequest` and the LSP lifecycle. Everything here runs on one thread.
public final class Dispatcher {
    public enum Lifecycle: String { case running, shuttingDown, shutDown }

    public let methods: MethodTable
    public let scheduler: Scheduler
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
    public init(methods: MethodTable, scheduler: Scheduler, checkpoint: @escaping () -> [JSON] = { [] }) {
        self.methods = methods
        self.scheduler = scheduler
        self.checkpoint = checkpoint
    }

    public var uptimeMs: Int64 { Int64(Date().timeIntervalSince(startTime) * 1000) }

    // MARK: incoming

    /// Handles one complete message body from `peer`.
    public func receive(_ body: [UInt8], from peer: Peer) {
        let json: JSON
        do {
            json = try JSON.parse(body)
        } catch {
            peer.send(RPCOutgoing.error(id: .null, .parseError("\(error)")))
            return
        }
        if case .array(let items) = json {
            guard !items.isEmpty else {
                peer.send(RPCOutgoing.error(id: .null, .invalidRequest("an empty batch")))
                return
            }
            let batch = Batch(count: items.count, peer: peer)
            for (i, item) in items.enumerated() {
                handle(item, from: peer) { batch.fill(i, $0) }
            }
        } else {
            handle(json, from: peer) { if let r = $0 { peer.send(r) } }
        }
    }

    /// Collects the replies of one batch and sends them together; notifications leave no slot, and a
    /// batch of notifications only gets no reply at all.
    private final class Batch {
        var slots: [JSON?]
        var remaining: Int
        let peer: Peer
        init(count: Int, peer: Peer) {
            slots = Array(repeating: nil, count: count)
            remaining = count
            self.peer = peer
        }
        func fill(_ i: Int, _ reply: JSON?) {
            slots[i] = reply
            remaining -= 1
            if remaining == 0 {
                let replies = slots.compactMap { $0 }
                if !replies.isEmpty { peer.send(.array(replies)) }
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
        func answer(_ result: Result<JSON, RPCError>) {
            guard let id else { reply(nil); return }
            switch result {
            case .success(let value): reply(RPCOutgoing.result(id: id, value))
            case .failure(let error): reply(RPCOutgoing.error(id: id, error))
            }
        }

        if lifecycle != .running && request.method != "exit" && request.method != "shutdown" {
            if !request.method.hasPrefix("$/") {
                Log.debug("peer \(peer.peerID): \(request.method) refused after shutdown")
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
                if !request.method.hasPrefix("$/") { Log.debug("peer \(peer.peerID): unknown notification \(request.method)") }
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
