import Foundation
import Models
import Tensors
import XCTest

/// LoRA adapters against PEFT on both fixtures: forward, gradients with the base frozen, switching,
/// merging and the safetensors round trip.
final class FluxLoRATests: XCTestCase {
    func adapter(_ f: FluxFixture) throws -> LoRAAdapter {
        try LoRAAdapter.load(from: f.directory.appendingPathComponent("lora.safetensors"), config: f.model.config)
    }

    func checkForwardAndGradients(_ name: String) throws {
        let f = try FluxFixture(name)
        let lora = try adapter(f)
        XCTAssertEqual(lora.rank, 4)
        XCTAssertEqual(lora.alpha, 8)
        XCTAssertEqual(lora.modules.count, f.io.names.filter { $0.hasPrefix("lora.grad.") && $0.hasSuffix("lora_A.weight") }.count)
        f.model.adapter = lora
        let ws = try f.workspace(training: true)
        let out = try f.model.forward(try f.input(), workspace: ws)
        let errOut = relativeError(out, try f.tensor("lora.out.sample"))
        XCTAssertLessThan(errOut, 1e-4, "\(name) LoRA forward \(errOut)")
        let g = lora.zerosLike()
        try f.model.backward(outputGradient: try f.tensor("in.R"), workspace: ws, adapterGradients: g, inputGradients: true)
        var worst = 0.0, checked = 0
        for (pname, t) in g.tensors {
            let err = relativeError(t, try f.tensor("lora.grad." + pname))
            XCTAssertLessThan(err, 1e-3, "\(name) d/d \(pname): \(err)")
            worst = max(worst, err); checked += 1
        }
        let ig = ws.inputGradients!
        for (key, ours) in [("hidden_states", ig.image), ("encoder_hidden_states", ig.text), ("pooled_projections", ig.pooled)] {
            let err = relativeError(ours, try f.tensor("lora.grad.input." + key))
            XCTAssertLessThan(err, 1e-3, "\(name) LoRA d/d \(key): \(err)")
            worst = max(worst, err)
        }
        print("\(name) LoRA: forward rel err \(errOut), \(checked) adapter gradients, worst \(worst)")
    }

    func testFixtureA() throws { try checkForwardAndGradients("flux-a") }
    func testFixtureB() throws { try checkForwardAndGradients("flux-b") }

    /// Switching the adapter off (per call or by `enabled`) gives the base model's output exactly.
    func testSwitchOff() throws {
        let f = try FluxFixture("flux-a")
        let ws = try f.workspace(training: false)
        let base = try f.model.forward(try f.input(), workspace: ws).copy()
        f.model.adapter = try adapter(f)
        let on = try f.model.forward(try f.input(), workspace: ws).copy()
        XCTAssertGreaterThan(relativeError(on, base), 1e-3)
        let offPerCall = try f.model.forward(try f.input(), workspace: ws, useAdapter: false).copy()
        XCTAssertEqual(offPerCall.array, base.array)
        f.model.adapter!.enabled = false
        XCTAssertEqual(try f.model.forward(try f.input(), workspace: ws).array, base.array)
    }

    /// Base weights stay untouched (memory-mapped, no copy) while an adapter is trained on them.
    func testBaseIsNotCopiedOrChanged() throws {
        let f = try FluxFixture("flux-b")
        let before = f.model.weights.tensors.map { $0.tensor.array }
        XCTAssertTrue(f.model.weights.tensors.allSatisfy { $0.tensor.isBorrowed })
        f.model.adapter = try adapter(f)
        let ws = try f.workspace(training: true)
        try f.model.forward(try f.input(), workspace: ws)
        try f.model.backward(outputGradient: try f.tensor("in.R"), workspace: ws, adapterGradients: f.model.adapter!.zerosLike())
        XCTAssertTrue(zip(before, f.model.weights.tensors).allSatisfy { $0.0 == $0.1.tensor.array })
    }

    /// Merging the adapter into a copy of the base reproduces the adapter's output.
    func testMerge() throws {
        for name in ["flux-a", "flux-b"] {
            let f = try FluxFixture(name)
            let lora = try adapter(f)
            let merged = FluxTransformer(weights: lora.merged(with: f.model.weights))
            let ws = try f.workspace(training: false)
            let out = try merged.forward(try f.input(), workspace: ws)
            let err = relativeError(out, try f.tensor("lora.out.sample"))
            XCTAssertLessThan(err, 1e-4, "\(name) merged: \(err)")
        }
    }

    /// Save → load gives the same adapter (names, rank, alpha, values).
    func testSaveLoadRoundTrip() throws {
        let f = try FluxFixture("flux-b")
        let lora = try LoRAAdapter.initialized(config: f.model.config, rank: 3, alpha: 6, seed: 7)
        var rng = RNG(seed: 3)
        for (name, t) in lora.tensors where name.contains("lora_B") { rng.fillNormal(t.data, count: t.count) }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("flux-lora-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("adapter.safetensors")
        try lora.save(to: url)
        let back = try LoRAAdapter.load(from: url, config: f.model.config)
        XCTAssertEqual(back.rank, 3)
        XCTAssertEqual(back.alpha, 6)
        XCTAssertEqual(back.modules, lora.modules)
        XCTAssertEqual(back.tensors.map(\.name), lora.tensors.map(\.name))
        XCTAssertEqual(back.flat.array, lora.flat.array)
    }

    /// PEFT's default init: A uniform within ±1/√in, B zero (the adapter starts as no change).
    func testDefaultInit() throws {
        let config = try FluxFixture("flux-a").model.config
        let lora = try LoRAAdapter.initialized(config: config, rank: 4, alpha: 4, seed: 1)
        XCTAssertEqual(lora.modules.count, 12 * config.numLayers + 5 * config.numSingleLayers)
        for (name, t) in lora.tensors {
            if name.hasSuffix("lora_B.weight") {
                XCTAssertTrue(t.array.allSatisfy { $0 == 0 }, name)
            } else {
                let bound = 1 / Float(t.shape[1]).squareRoot()
                XCTAssertTrue(t.array.allSatisfy { abs($0) <= bound }, name)
                XCTAssertGreaterThan(t.array.map { abs($0) }.max()!, bound * 0.8, name)
            }
        }
    }

    /// Issue 35: an adapter with a NaN or infinite value is refused at load (a model with it draws NaN
    /// images), naming the tensor; so is a non-finite alpha.
    func testNonFiniteAdapterIsRefused() throws {
        let f = try FluxFixture("flux-b")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("flux-lora-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        for poison in [Float.nan, .infinity, -.infinity] {
            let lora = try LoRAAdapter.initialized(config: f.model.config, rank: 2, alpha: 2, seed: 7)
            XCTAssertNil(lora.nonFinite())
            let (name, t) = lora.tensors[3]
            t.data[5] = poison
            XCTAssertNotNil(lora.nonFinite())
            let url = dir.appendingPathComponent("poison.safetensors")
            try lora.save(to: url)
            XCTAssertThrowsError(try LoRAAdapter.load(from: url, config: f.model.config)) { error in
                let text = "\(error)"
                XCTAssertTrue(text.contains("non-finite") && text.contains(name) && text.contains("index 5"), text)
            }
        }
        let lora = try LoRAAdapter.initialized(config: f.model.config, rank: 2, alpha: 2, seed: 7)
        let url = dir.appendingPathComponent("alpha.safetensors")
        try SafeTensors.write(lora.tensors, metadata: ["alpha": "nan"], to: url)
        XCTAssertThrowsError(try LoRAAdapter.load(from: url, config: f.model.config)) { error in
            XCTAssertTrue("\(error)".contains("alpha"), "\(error)")
        }
    }

    /// An adapter file with a tensor the model does not have, a wrong shape or a half pair is refused,
    /// naming each offending tensor.
    func testBadAdapterFile() throws {
        let f = try FluxFixture("flux-a")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("flux-lora-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("bad.safetensors")
        try SafeTensors.write(["transformer_blocks.0.attn.to_q.lora_A.weight": Tensor(zeros: [4, 24]),
                               "transformer_blocks.0.attn.to_k.lora_A.weight": Tensor(zeros: [4, 24]),
                               "transformer_blocks.0.attn.to_k.lora_B.weight": Tensor(zeros: [25, 4]),
                               "transformer_blocks.0.attn.to_x.lora_A.weight": Tensor(zeros: [4, 24])],
                              metadata: ["alpha": "4"], to: url)
        XCTAssertThrowsError(try LoRAAdapter.load(from: url, config: f.model.config)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("transformer_blocks.0.attn.to_q.lora_B.weight"), text)
            XCTAssertTrue(text.contains("transformer_blocks.0.attn.to_x.lora_A.weight"), text)
            XCTAssertTrue(text.contains("transformer_blocks.0.attn.to_k.lora_B.weight [25, 4]"), text)
        }
    }
}
