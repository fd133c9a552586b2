import EruDiff
import Foundation
import Models
import Tensors
import XCTest

/// Pretraining at a toy size: a run stopped and resumed from its checkpoint ends exactly where an
/// uninterrupted run does, the finished folder loads as a model, and a state file made with other
/// options or damaged is refused with a clear error.
final class PretrainingTests: XCTestCase {
    static func options(steps: Int) -> Pretraining.Options {
        var o = Pretraining.Options()
        o.steps = steps
        o.batch = 4
        o.warmupSteps = 2
        o.captionPool = 24
        o.textTokens = 8
        o.checkpointEvery = 0
        o.seed = 5
        o.config.numLayers = 1
        o.config.numSingleLayers = 1
        o.config.attentionHeadDim = 8
        o.config.numAttentionHeads = 2
        o.config.axesDimsRope = [2, 2, 4]
        return o
    }

    private func run(_ dir: URL, steps: Int, total: Int) throws -> Pretraining {
        let p = try Pretraining(out: dir, options: Self.options(steps: total), encoder: TinyModel.encoder)
        while p.step < steps, try p.next() != nil {}
        return p
    }

    private func weights(_ dir: URL) throws -> [String: [Float]] {
        let file = try SafeTensors(contentsOf: dir.appendingPathComponent(Pretraining.stateFileName))
        var out: [String: [Float]] = [:]
        for name in file.names { out[name] = try file.tensor(named: name).array }
        return out
    }

    func testResumeContinuesExactlyAsAnUninterruptedRun() throws {
        let whole = TinyModel.temporaryDirectory("pretrain-whole"), split = TinyModel.temporaryDirectory("pretrain-split")
        defer { try? FileManager.default.removeItem(at: whole); try? FileManager.default.removeItem(at: split) }

        let a = try run(whole, steps: 6, total: 6)
        XCTAssertTrue(a.isFinished)
        try a.checkpoint()

        let b1 = try run(split, steps: 3, total: 6)
        XCTAssertEqual(b1.step, 3)
        try b1.checkpoint()
        let b2 = try run(split, steps: 6, total: 6)     // a new process would do the same: state from the file
        XCTAssertEqual(b2.step, 6)
        try b2.checkpoint()

        let wa = try weights(whole), wb = try weights(split)
        XCTAssertFalse(wa.isEmpty)
        XCTAssertEqual(Set(wa.keys), Set(wb.keys))
        for (name, v) in wa {
            XCTAssertEqual(v, wb[name]!, "\(name) differs after resuming")
        }
        XCTAssertTrue(wa.keys.contains { $0.hasPrefix("ema.") }, "the EMA is part of the state")

        // The finished folder is a loadable model in diffusers' layout.
        try b2.finish()
        let loaded = try FluxCheckpoint.load(directory: split)
        XCTAssertEqual(loaded.config.numAttentionHeads, 2)
        XCTAssertTrue(FileManager.default.fileExists(atPath: split.appendingPathComponent("training.json").path))
    }

    func testOtherOptionsOrDamagedStateAreRefused() throws {
        let dir = TinyModel.temporaryDirectory("pretrain-refuse")
        defer { try? FileManager.default.removeItem(at: dir) }
        let p = try run(dir, steps: 1, total: 4)
        try p.checkpoint()

        var other = Self.options(steps: 4)
        other.learningRate *= 2
        XCTAssertThrowsError(try Pretraining(out: dir, options: other, encoder: TinyModel.encoder)) { error in
            XCTAssertTrue("\(error)".contains("other options"), "\(error)")
        }
        // More steps is allowed (train longer); the state's step is kept.
        let longer = try Pretraining(out: dir, options: Self.options(steps: 8), encoder: TinyModel.encoder)
        XCTAssertEqual(longer.step, 1)
        XCTAssertEqual(longer.options.steps, 8)

        // A truncated state file is a clear error naming it, not a crash.
        let url = dir.appendingPathComponent(Pretraining.stateFileName)
        let data = try Data(contentsOf: url)
        try data.prefix(data.count / 2).write(to: url)
        XCTAssertThrowsError(try Pretraining(out: dir, options: Self.options(steps: 4), encoder: TinyModel.encoder)) { error in
            XCTAssertFalse("\(error)".isEmpty)
        }
    }
}
