import Foundation
import XCTest
import EruDiff
import Tensors
@testable import Daemon
import RPCServer

/// The daemon-side pieces of the engine methods that need no model: the sample store's limits, the
/// training parameters, where the default model is looked for (the black-box tests in
/// clients/python/tests run the methods themselves).
final class EngineSupportTests: XCTestCase {
    private func record(_ store: SampleStore, _ id: String, age: TimeInterval = 0) -> SampleStore.Record {
        SampleStore.Record(id: id, model: "mini", prompt: "p", seed: 1, settings: SamplingSettings(),
                           image: Tensor(zeros: [2, 2, 3]), created: Date().addingTimeInterval(-age))
    }

    func testSampleStoreKeepsTheNewestAndTellsExpiredFromUnknown() {
        let store = SampleStore(limit: 2, ttl: 60)
        let ids = store.reserveIDs(3)
        XCTAssertEqual(Set(ids).count, 3)
        for id in ids { store.add(record(store, id)) }
        XCTAssertEqual(store.count, 2)
        guard case .expired = store.lookup(ids[0]) else { return XCTFail("the oldest is dropped beyond the limit") }
        guard case .found(let r) = store.lookup(ids[2]) else { return XCTFail("the newest is kept") }
        XCTAssertEqual(r.id, ids[2])
        guard case .unknown = store.lookup("s-0-1") else { return XCTFail("an id of another daemon is unknown") }
        let never = store.reserveIDs(1)[0].replacingOccurrences(of: "-", with: "x")
        guard case .unknown = store.lookup(never) else { return XCTFail("garbage is unknown") }
    }

    func testSampleStoreDropsSamplesOlderThanTheTTL() {
        let store = SampleStore(limit: 10, ttl: 5)
        let ids = store.reserveIDs(2)
        store.add(record(store, ids[0], age: 10))
        store.add(record(store, ids[1]))
        guard case .expired = store.lookup(ids[0]) else { return XCTFail("older than the TTL") }
        guard case .found = store.lookup(ids[1]) else { return XCTFail("young enough") }
        XCTAssertEqual(store.bytes, 12 * 4)
    }

    func testMaxGradNormTakesAPositiveNumberOrNull() throws {
        func read(_ text: String) throws -> Float? {
            let p = try Params(method: "rlStep", JSON.parse(text))
            let v = try RLParams.options(p).0.maxGradNorm
            try p.finish()
            return v
        }
        XCTAssertEqual(try read("{}"), 1)
        XCTAssertEqual(try read(#"{"maxGradNorm": 2.5}"#), 2.5)
        XCTAssertNil(try read(#"{"maxGradNorm": null}"#), "null turns clipping off")
        XCTAssertThrowsError(try read(#"{"maxGradNorm": 0}"#)) {
            XCTAssertTrue(($0 as! RPCError).message.contains("\"maxGradNorm\" must be"), "\($0)")
        }
        XCTAssertThrowsError(try read(#"{"maxGradNorm": "off"}"#))
    }

    /// An option declared in a method's table is a parameter, with its range.
    func testRowsPerPassIsAParameterOfBothTrainingMethods() throws {
        XCTAssertEqual(try MatchParams.options(Params(method: "matchDistributions", JSON.parse(#"{"rowsPerPass": 4}"#))).0.rowsPerPass, 4)
        XCTAssertEqual(try RLParams.options(Params(method: "rlStep", JSON.parse("{}"))).0.rowsPerPass, 16)
        XCTAssertThrowsError(try RLParams.options(Params(method: "rlStep", JSON.parse(#"{"rowsPerPass": 0}"#)))) {
            XCTAssertTrue(($0 as! RPCError).message.contains("\"rowsPerPass\" must be an integer in 1...4096"), "\($0)")
        }
    }

    func testRLStepRewardChoosesTheWorldReward() throws {
        func read(_ text: String) throws -> WorldReward {
            try RLParams.options(Params(method: "rlStep", JSON.parse(text))).0.reward
        }
        XCTAssertEqual(try read("{}"), .score)
        XCTAssertEqual(try read(#"{"reward": "world"}"#), .score)
        XCTAssertEqual(try read(#"{"reward": "world-graded"}"#), .graded)
        XCTAssertThrowsError(try read(#"{"reward": "clip"}"#)) {
            XCTAssertTrue(($0 as! RPCError).message.contains("world-graded"), "\($0)")
        }
    }

    func testDefaultModelIsFoundAboveTheBinaryOrThroughTheEnvironment() throws {
        let root = NSTemporaryDirectory() + "default-model-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: root) }
        let fm = FileManager.default
        try fm.createDirectory(atPath: root + "/repo/models/mini", withIntermediateDirectories: true)
        try Data("{}".utf8).write(to: URL(fileURLWithPath: root + "/repo/models/mini/config.json"))
        try fm.createDirectory(atPath: root + "/repo/.build/release", withIntermediateDirectories: true)
        let exe = root + "/repo/.build/release/erudiffd"
        var r = DefaultModel.locate(environment: [:], executable: exe, currentDirectory: "/")
        XCTAssertEqual(r.path.map { URL(fileURLWithPath: $0).standardizedFileURL.path },
                       URL(fileURLWithPath: root + "/repo/models/mini").standardizedFileURL.path)
        try fm.createDirectory(atPath: root + "/other/mini", withIntermediateDirectories: true)
        try Data("{}".utf8).write(to: URL(fileURLWithPath: root + "/other/mini/config.json"))
        r = DefaultModel.locate(environment: ["ERUDIFF_MODELS": root + "/other"], executable: exe, currentDirectory: "/")
        XCTAssertEqual(r.path, root + "/other/mini", "ERUDIFF_MODELS comes first")
        r = DefaultModel.locate(environment: [:], executable: root + "/nowhere/bin/erudiffd", currentDirectory: root + "/nowhere")
        XCTAssertNil(r.path)
        XCTAssertTrue(r.searched.contains(root + "/nowhere/models/mini"), "\(r.searched)")
    }

    func testAnInstallPrefixOrErudiffHomeHoldsTheModelAndMiniLM() throws {
        // scripts/install: PREFIX/bin/erudiffd, PREFIX/share/erudiff/models/mini, PREFIX/share/erudiff/minilm.
        let root = NSTemporaryDirectory() + "install-layout-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: root) }
        let fm = FileManager.default
        for dir in ["/prefix/bin", "/prefix/share/erudiff/models/mini", "/prefix/share/erudiff/minilm", "/home/share/erudiff/minilm",
                    "/home/models/mini"] {
            try fm.createDirectory(atPath: root + dir, withIntermediateDirectories: true)
        }
        for file in ["/prefix/share/erudiff/models/mini/config.json", "/home/models/mini/config.json"]
            + ["config.json", "vocab.txt", "model.safetensors"].map({ "/prefix/share/erudiff/minilm/" + $0 })
            + ["config.json", "vocab.txt"].map({ "/home/share/erudiff/minilm/" + $0 }) {
            try Data("{}".utf8).write(to: URL(fileURLWithPath: root + file))
        }
        let exe = root + "/prefix/bin/erudiffd"
        XCTAssertEqual(DefaultModel.locate(environment: [:], executable: exe, currentDirectory: "/").path,
                       root + "/prefix/share/erudiff/models/mini")
        XCTAssertEqual(DefaultModel.locate(environment: ["ERUDIFF_HOME": root + "/home"], executable: exe, currentDirectory: "/").path,
                       root + "/home/models/mini", "ERUDIFF_HOME comes before the folders above the binary")
        XCTAssertEqual(DefaultModel.installedMiniLM(environment: [:], executable: exe), root + "/prefix/share/erudiff/minilm")
        XCTAssertEqual(DefaultModel.installedMiniLM(environment: ["ERUDIFF_HOME": root + "/home"], executable: exe),
                       root + "/prefix/share/erudiff/minilm", "a folder without model.safetensors does not count")
        XCTAssertNil(DefaultModel.installedMiniLM(environment: ["ERUDIFF_MINILM": "/x"], executable: exe),
                     "ERUDIFF_MINILM comes first (MiniLMLocator reads it)")
        XCTAssertNil(DefaultModel.installedMiniLM(environment: [:], executable: root + "/elsewhere/bin/erudiffd"))
    }
}
