import Foundation
import XCTest
@testable import Daemon

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

/// A dispatcher with a real scheduler and worker thread, driven without sockets: the test pumps the
/// scheduler's events itself instead of a uv_async callback.
final class DispatcherHarness {
    let dispatcher: Dispatcher
    let host = RecordingHost()
    let stateDir: String

    init(maxQueue: Int = 32, checkpointEvery: Int = 10, testMethods: Bool = true) {
        stateDir = NSTemporaryDirectory() + "daemon-tests-\(getpid())-\(UUID().uuidString)"
        var o = DaemonOptions()
        o.maxQueue = maxQueue
        o.checkpointEvery = checkpointEvery
        o.enableTestMethods = testMethods
        o.stateDir = stateDir
        let models = ModelRegistry()
        let state = StateDirectory(path: stateDir)
        let scheduler = Scheduler(maxJobs: maxQueue, checkpointEvery: checkpointEvery, state: state, models: models) {}
        dispatcher = Dispatcher(options: o, methods: MethodTable.standard(options: o, models: models), models: models,
                                state: state, scheduler: scheduler)
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
