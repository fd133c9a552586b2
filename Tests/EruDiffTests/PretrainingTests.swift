@testable import EruDiff
import Foundation
import Models
import Tensors
import World
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

    /// A slim state (scripts/slim-pretrain-state: no AdamW moments) resumes at its step with its
    /// weights and EMA, fresh moments, and trains on.
    func testSlimStateResumesWithFreshMoments() throws {
        let dir = TinyModel.temporaryDirectory("pretrain-slim")
        defer { try? FileManager.default.removeItem(at: dir) }
        let a = try run(dir, steps: 3, total: 6)
        try a.checkpoint()
        let full = try weights(dir)
        let state = dir.appendingPathComponent(Pretraining.stateFileName)
        let slimURL = dir.appendingPathComponent("slim.safetensors")
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("scripts/slim-pretrain-state")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", script.path, state.path, slimURL.path]
        try p.run()
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 0)
        let slimFile = try SafeTensors(contentsOf: slimURL)
        XCTAssertFalse(slimFile.names.contains { $0.hasPrefix("adam_") })
        XCTAssertEqual(Set(slimFile.names), Set(full.keys.filter { !$0.hasPrefix("adam_") }))
        try FileManager.default.removeItem(at: state)
        try FileManager.default.moveItem(at: slimURL, to: state)

        let b = try Pretraining(out: dir, options: Self.options(steps: 6), encoder: TinyModel.encoder)
        XCTAssertEqual(b.step, 3)
        try b.checkpoint()
        let resumed = try weights(dir)
        for (name, v) in full {
            if name.hasPrefix("adam_") {
                XCTAssertTrue(resumed[name]!.allSatisfy { $0 == 0 }, "\(name) should start from zero")
            } else {
                XCTAssertEqual(v, resumed[name]!, "\(name) differs after resuming a slim state")
            }
        }
        while try b.next() != nil {}
        XCTAssertEqual(b.step, 6)
        XCTAssertTrue(b.smoothedLoss.isFinite)
    }

    /// The time distribution's options reach the training step: shift and spread as given, 1 when unset.
    func testTimeShiftAndSpreadReachTheTrainingStep() throws {
        let dir = TinyModel.temporaryDirectory("pretrain-times")
        defer { try? FileManager.default.removeItem(at: dir) }
        let plain = try Pretraining(out: dir, options: Self.options(steps: 2), encoder: TinyModel.encoder)
        XCTAssertEqual(plain.trainerOptions.timeShift, 1)
        XCTAssertEqual(plain.trainerOptions.timeStd, 1)
        var o = Self.options(steps: 2)
        o.timeShift = 0.4
        o.timeStd = 1.6
        let wide = try Pretraining(out: dir, options: o, encoder: TinyModel.encoder)
        XCTAssertEqual(wide.trainerOptions.timeShift, 0.4)
        XCTAssertEqual(wide.trainerOptions.timeStd, 1.6)
        // Options saved before the spread existed still decode (it is optional).
        let old = try JSONEncoder().encode(Self.options(steps: 2))
        var dict = try JSONSerialization.jsonObject(with: old) as! [String: Any]
        dict.removeValue(forKey: "timeStd")
        let decoded = try JSONDecoder().decode(Pretraining.Options.self, from: JSONSerialization.data(withJSONObject: dict))
        XCTAssertNil(decoded.timeStd)
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

    func testInitialWeightsStartTheRunFromASavedModel() throws {
        let base = TinyModel.temporaryDirectory("pretrain-base"), cont = TinyModel.temporaryDirectory("pretrain-cont")
        let other = TinyModel.temporaryDirectory("pretrain-other")
        defer { for d in [base, cont, other] { try? FileManager.default.removeItem(at: d) } }
        let a = try run(base, steps: 3, total: 3)
        try a.finish()
        let saved = try FluxCheckpoint.load(directory: base)

        var o = Self.options(steps: 2)
        o.seed = 9
        o.initialWeights = base.path
        let b = try Pretraining(out: cont, options: o, encoder: TinyModel.encoder)
        XCTAssertEqual(b.step, 0)
        // Before any step, both the trained weights and their EMA are the saved model's.
        for (w, s) in zip(b.model.weights.tensors, saved.tensors) {
            XCTAssertEqual(w.name, s.name)
            XCTAssertEqual(w.tensor.array, s.tensor.array, "\(w.name) is not the saved model's")
        }
        for (e, s) in zip(b.emaModel().weights.tensors, saved.tensors) {
            XCTAssertEqual(e.tensor.array, s.tensor.array, "EMA \(e.name) is not the saved model's")
        }
        // A run from scratch with the same seed starts elsewhere.
        var scratch = Self.options(steps: 2)
        scratch.seed = 9
        let c = try Pretraining(out: other, options: scratch, encoder: TinyModel.encoder)
        XCTAssertNotEqual(c.model.weights.tensors[0].tensor.array, saved.tensors[0].tensor.array)

        // The finished continuation records the whole training time (the base's plus its own).
        while try b.next() != nil {}
        try b.finish()
        let info = try JSONSerialization.jsonObject(with: Data(contentsOf: cont.appendingPathComponent("training.json"))) as! [String: Any]
        let initial = try XCTUnwrap(info["initial_training_seconds"] as? Double)
        let total = try XCTUnwrap(info["total_training_seconds"] as? Double)
        XCTAssertEqual(initial, (a.trainingSeconds * 10).rounded() / 10, accuracy: 0.05)
        XCTAssertGreaterThanOrEqual(total, initial)

        // A model of another shape is refused with an error naming the folder.
        var reshaped = Self.options(steps: 2)
        reshaped.config.numSingleLayers = 2
        reshaped.initialWeights = base.path
        XCTAssertThrowsError(try Pretraining(out: other, options: reshaped,
                                             encoder: TinyModel.encoder)) { error in
            XCTAssertTrue("\(error)".contains(base.path) && "\(error)".contains("shape"), "\(error)")
        }
        // So is a folder that holds no model.
        var missing = Self.options(steps: 2)
        missing.initialWeights = cont.appendingPathComponent("nothing-here").path
        XCTAssertThrowsError(try Pretraining(out: other, options: missing,
                                             encoder: TinyModel.encoder)) { error in
            XCTAssertTrue("\(error)".contains("initial weights"), "\(error)")
        }
    }

    func testGeometryCurriculumDrawsLargeCentredScenesFirstThenTheWholeWorld() throws {
        let c = GeometryCurriculum(fixedSteps: 10, rampSteps: 20)
        XCTAssertEqual(c.fixedShare(at: 0), 1)
        XCTAssertEqual(c.fixedShare(at: 9), 1)
        XCTAssertEqual(c.fixedShare(at: 20), 0.5, accuracy: 1e-6)
        XCTAssertEqual(c.fixedShare(at: 30), 0)
        XCTAssertEqual(c.fixedShare(at: 1000), 0)
        XCTAssertEqual(GeometryCurriculum(fixedSteps: 5, rampSteps: 0).fixedShare(at: 5), 0)

        XCTAssertTrue(GeometryCurriculum.admitsFixedGeometry(Attributes(shape: .star, size: .large)))
        XCTAssertFalse(GeometryCurriculum.admitsFixedGeometry(Attributes(shape: .star, position: .left)))
        XCTAssertFalse(GeometryCurriculum.admitsFixedGeometry(Attributes(shape: .star, size: .small, position: .center)))
        let fixed = GeometryCurriculum.fixingGeometry(Attributes(shape: .ring, color: .red))
        XCTAssertEqual(fixed, Attributes(shape: .ring, color: .red, size: .large, position: .center))

        let dir = TinyModel.temporaryDirectory("pretrain-curriculum")
        defer { try? FileManager.default.removeItem(at: dir) }
        var o = Self.options(steps: 40)
        o.batch = 64
        o.captionPool = 200
        o.geometryCurriculum = c
        let p = try Pretraining(out: dir, options: o, encoder: TinyModel.encoder)
        func geometries(_ step: Int) -> [(Size, Position)] { p.draw(step: step).map { ($0.scene.size, $0.scene.position) } }
        func fixedCount(_ step: Int) -> Int { geometries(step).filter { $0 == (.large, .center) }.count }

        // The fixed phase: every scene large and centred, from captions that allow it.
        for step in [0, 9] {
            XCTAssertEqual(fixedCount(step), 64, "step \(step)")
            for d in p.draw(step: step) {
                XCTAssertTrue(GeometryCurriculum.admitsFixedGeometry(p.pool.captions[d.caption].attributes))
            }
        }
        // The ramp: a mix. After it: the world's own distribution (about one scene in ten large and centred).
        let mid = fixedCount(20)
        XCTAssertTrue(mid > 20 && mid < 64, "\(mid) of 64 fixed at half the ramp")
        let late = (30..<40).map(fixedCount).reduce(0, +)
        XCTAssertLessThan(late, 120, "\(late) of 640 fixed after the ramp")
        XCTAssertEqual(Set((30..<40).flatMap(geometries).map { "\($0.0)-\($0.1)" }).count, 10,
                       "every size and position appears after the ramp")
        // Drawing is a function of (seed, step): asking twice gives the same batch.
        XCTAssertEqual(p.draw(step: 25).map(\.scene), p.draw(step: 25).map(\.scene))
        // Without a curriculum, scenes of every geometry appear from the first step.
        var plain = o
        plain.geometryCurriculum = nil
        let plainDir = TinyModel.temporaryDirectory("pretrain-plain")
        defer { try? FileManager.default.removeItem(at: plainDir) }
        let q = try Pretraining(out: plainDir, options: plain, encoder: TinyModel.encoder)
        XCTAssertLessThan(q.draw(step: 0).filter { ($0.scene.size, $0.scene.position) == (.large, .center) }.count, 20)
    }
}
