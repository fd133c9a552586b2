import Foundation
import Tensors
import XCTest

/// `AtomicFile`, which safetensors writing and checkpoints use: the destination holds the old bytes or
/// the new ones, never a mix, and no temporary file is left behind.
final class SafeTensorsAtomicWriteTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws { dir = try SafeTensorsTestSupport.scratchDirectory() }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    func listing() throws -> [String] { try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted() }

    func testWritesAndReplacesWithoutLeftovers() throws {
        let url = dir.appendingPathComponent("state.bin")
        try AtomicFile.write(Data("first".utf8), to: url)
        XCTAssertEqual(try Data(contentsOf: url), Data("first".utf8))
        let inode = try FileManager.default.attributesOfItem(atPath: url.path)[.systemFileNumber] as? Int
        try AtomicFile.write(Data("second, longer".utf8), to: url)
        XCTAssertEqual(try Data(contentsOf: url), Data("second, longer".utf8))
        XCTAssertNotEqual(try FileManager.default.attributesOfItem(atPath: url.path)[.systemFileNumber] as? Int, inode,
                          "replaced by rename, not rewritten in place")
        XCTAssertEqual(try listing(), ["state.bin"])
    }

    func testBufferedWriterKeepsEveryByteInOrder() throws {
        let url = dir.appendingPathComponent("big.bin")
        var rng = RNG(seed: 5)
        let big = (0..<(3 << 20)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }  // larger than the buffer
        var expected: [UInt8] = []
        var written = 0
        try AtomicFile.write(to: url) { out in
            for k in 0..<1000 {  // many small writes around a large one
                let chunk = (0..<(k % 17)).map { UInt8(truncatingIfNeeded: $0 &+ k) }
                try chunk.withUnsafeBytes { try out.write($0) }
                expected += chunk
                if k == 500 { try big.withUnsafeBytes { try out.write($0) }; expected += big }
            }
            try out.write(repeating: 0x20, count: 10_000)
            expected += [UInt8](repeating: 0x20, count: 10_000)
            written = out.byteCount
        }
        XCTAssertEqual(written, expected.count)
        XCTAssertEqual([UInt8](try Data(contentsOf: url)), expected)
    }

    func testAFailingWriteLeavesTheOldFileAlone() throws {
        struct Stop: Error {}
        let url = dir.appendingPathComponent("keep.bin")
        try AtomicFile.write(Data("old".utf8), to: url)
        XCTAssertThrowsError(try AtomicFile.write(to: url) { out in
            try out.write(Data(repeating: 7, count: 5 << 20))
            throw Stop()
        }) { XCTAssertTrue($0 is Stop) }
        XCTAssertEqual(try Data(contentsOf: url), Data("old".utf8))
        XCTAssertEqual(try listing(), ["keep.bin"])
    }

    func testUnwritableDestinationIsANamedError() throws {
        let url = dir.appendingPathComponent("missing-dir/x.bin")
        XCTAssertThrowsError(try AtomicFile.write(Data("x".utf8), to: url)) { e in
            XCTAssertTrue(e is AtomicFileError, "\(e)")
            XCTAssertTrue("\(e)".contains(url.path) && "\(e)".contains("No such file"), "\(e)")
        }
    }

    /// Saving over a checkpoint that is memory-mapped leaves the tensors already loaded intact.
    func testReplacingAMappedCheckpointKeepsLoadedTensors() throws {
        let url = dir.appendingPathComponent("ckpt.safetensors")
        try SafeTensors.write([("w", Tensor(shape: [3], values: [1, 2, 3]))], to: url)
        let old = try SafeTensors(contentsOf: url).tensor(named: "w")
        try SafeTensors.write([("w", Tensor(shape: [3], values: [7, 8, 9]))], metadata: ["step": "2"], to: url)
        XCTAssertEqual(old.array, [1, 2, 3])
        let new = try SafeTensors(contentsOf: url)
        XCTAssertEqual(try new.tensor(named: "w").array, [7, 8, 9])
        XCTAssertEqual(new.metadata, ["step": "2"])
        XCTAssertEqual(try listing(), ["ckpt.safetensors"])
    }
}
