import Foundation
import XCTest
@testable import RPCServer

/// A connection that records what the dispatcher sends it.
final class RecordingPeer: Peer {
    let peerID: Int
    var sent: [JSON] = []
    init(_ id: Int) { peerID = id }
    func send(_ message: JSON) { sent.append(message) }

    /// Replies (not notifications) in order.
    var replies: [JSON] { sent.filter { $0["method"] == nil } }
    func reply(id: JSON) -> JSON? { replies.first { $0["id"] == id } }
    func progress(token: JSON) -> [JSON] {
        sent.filter { $0["method"] == "$/progress" && $0["params"]?["token"] == token }.compactMap { $0["params"]?["value"] }
    }
}

final class RecordingHost: DispatcherHost {
    var exitCode: Int32?
    var idlePeers: [Int] = []
    var connectionCount: Int { 1 }
    func exitRequested(code: Int32) { exitCode = code }
    func peerIdle(_ peer: Peer) { idlePeers.append(peer.peerID) }
}

/// A toy application: the lifecycle methods, `toy/add` (immediate), `toy/count` (a job of one unit per
/// number) and the test methods, with hooks that count their calls. It knows nothing of erudiff, so
/// these tests show what the server does for any application.
final class ToyApplication: @unchecked Sendable {
    static let info = ServerInfo(name: "toyd", version: "9.9")
    private let lock = NSLock()
    private var _afterWork = 0, _checkpoints = 0
    var afterWorkCalls: Int { lock.withLock { _afterWork } }
    var checkpointCalls: Int { lock.withLock { _checkpoints } }

    var hooks: ServerHooks {
        ServerHooks(afterWork: { self.lock.withLock { self._afterWork += 1 } },
                    checkpoint: { self.lock.withLock { self._checkpoints += 1 }; return [] })
    }

    func methods(options: ServerOptions, testMethods: Bool, stateDir: String) -> MethodTable {
        let t = MethodTable()
        t.registerLifecycleMethods(info: Self.info, options: options) { ["toys": 3] }
        t.register("toy/add", .immediate { _, params in
            .double(try params.double("a") + params.double("b"))
        })
        t.register("toy/count", .job { _, params in
            let to = try params.int("to", in: 1...1000)
            var n = 0
            return ClosureJob(title: "toy/count: \(to)") { _ in
                n += 1
                return n < to ? .progress(fraction: Double(n) / Double(to), message: "\(n)") : .done(.int(Int64(n)))
            }
        })
        if testMethods {
            t.registerTestMethods { name, data in   // atomically, born 0600
                let path = stateDir + "/test/\(name).json"
                try FileManager.default.createDirectory(atPath: stateDir + "/test", withIntermediateDirectories: true)
                guard FileManager.default.createFile(atPath: path + ".tmp", contents: data, attributes: [.posixPermissions: 0o600]),
                      rename(path + ".tmp", path) == 0 else { throw CocoaError(.fileWriteUnknown) }
            }
        }
        return t
    }
}

/// A dispatcher with a real scheduler and worker thread, driven without sockets: the test pumps the
/// scheduler's events itself instead of a uv_async callback.
final class DispatcherHarness {
    let dispatcher: Dispatcher
    let host = RecordingHost()
    let app = ToyApplication()
    let stateDir: String

    init(maxQueue: Int = 32, checkpointEvery: Int = 10, testMethods: Bool = true, limits: DispatchLimits = DispatchLimits(),
         longShare: Double = 0.5, longAfter: Double = 2) {
        stateDir = NSTemporaryDirectory() + "rpcserver-tests-\(getpid())-\(UUID().uuidString)"
        var o = ServerOptions(runtimeDirectory: "rpcserver-tests", socketName: "toyd.sock")
        o.maxQueue = maxQueue
        o.checkpointEvery = checkpointEvery
        let scheduler = Scheduler(maxJobs: maxQueue, checkpointEvery: checkpointEvery, longShare: longShare,
                                  longAfter: longAfter, afterWork: app.hooks.afterWork) {}
        dispatcher = Dispatcher(methods: app.methods(options: o, testMethods: testMethods, stateDir: stateDir),
                                scheduler: scheduler, limits: limits, checkpoint: app.hooks.checkpoint)
        dispatcher.host = host
        scheduler.start()
    }

    deinit {
        dispatcher.scheduler.stop()
        try? FileManager.default.removeItem(atPath: stateDir)
    }

    func send(_ text: String, from peer: Peer) {
        dispatcher.receive(Array(text.utf8), from: peer)
    }

    func request(_ id: Int, _ method: String, _ params: String? = nil) -> String {
        let p = params.map { ",\"params\":\($0)" } ?? ""
        return "{\"jsonrpc\":\"2.0\",\"id\":\(id),\"method\":\"\(method)\"\(p)}"
    }

    /// Pumps scheduler events until `condition` holds; false on timeout.
    @discardableResult
    func pump(timeout: Double = 10, until condition: () -> Bool) -> Bool {
        let end = Date().addingTimeInterval(timeout)
        while Date() < end {
            dispatcher.pumpSchedulerEvents()
            if condition() { return true }
            usleep(1000)
        }
        return condition()
    }
}

func errorCode(_ reply: JSON?) -> Int64? { reply?["error"]?["code"]?.intValue }
