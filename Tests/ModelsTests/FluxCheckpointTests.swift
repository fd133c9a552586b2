import Foundation
import Models
import Tensors
import XCTest

/// Config and checkpoint loading and saving.
final class FluxCheckpointTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("flux-ckpt-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    /// diffusers' config.json (with `out_channels: null` and private keys) reads as expected.
    func testReadsDiffusersConfig() throws {
        let f = try FluxFixture("flux-b")
        let c = f.model.config
        XCTAssertEqual(c, FluxConfig(inChannels: 12, numLayers: 2, numSingleLayers: 1, attentionHeadDim: 10,
                                     numAttentionHeads: 2, jointAttentionDim: 16, pooledProjectionDim: 12,
                                     guidanceEmbeds: true, axesDimsRope: [2, 4, 4]))
        XCTAssertEqual(c.outChannels, 12)
        XCTAssertTrue(f.model.weights.tensors.allSatisfy { $0.tensor.isBorrowed }, "weights should be memory-mapped")
    }

    /// Save → load gives identical tensors, config and outputs.
    func testSaveLoadRoundTrip() throws {
        let w = FluxWeights.random(config: .mini, seed: 5)
        var rng = RNG(seed: 9)
        rng.fillNormal(w.flat!.data, count: w.flat!.count, std: 0.05)  // nothing left at zero
        try FluxCheckpoint.save(w, directory: dir)
        let back = try FluxCheckpoint.load(directory: dir)
        XCTAssertEqual(back.config, .mini)
        XCTAssertEqual(back.tensors.map(\.name), w.tensors.map(\.name))
        for (a, b) in zip(back.tensors, w.tensors) { XCTAssertEqual(a.tensor.array, b.tensor.array, a.name) }
        XCTAssertEqual(back.parameterCount, w.parameterCount)
    }

    /// A checkpoint that does not fit its config names every missing, unexpected and mis-shaped tensor.
    func testMismatchListsOffendingTensors() throws {
        let f = try FluxFixture("flux-a")
        var tensors: [String: Tensor] = [:]
        for (n, t) in f.model.weights.tensors { tensors[n] = t }
        tensors["transformer_blocks.0.attn.to_q.weight"] = nil
        tensors["single_transformer_blocks.1.proj_mlp.bias"] = nil
        tensors["transformer_blocks.0.attn.to_k.weight"] = Tensor(zeros: [24, 23])
        tensors["transformer_blocks.7.attn.to_q.weight"] = Tensor(zeros: [24, 24])
        try f.model.config.write(to: dir.appendingPathComponent("config.json"))
        try SafeTensors.write(tensors, to: dir.appendingPathComponent("model.safetensors"))
        XCTAssertThrowsError(try FluxCheckpoint.load(directory: dir)) { error in
            guard case let FluxError.checkpointMismatch(_, missing, unexpected, misshaped) = error else {
                return XCTFail("wrong error \(error)")
            }
            XCTAssertEqual(missing, ["transformer_blocks.0.attn.to_q.weight", "single_transformer_blocks.1.proj_mlp.bias"])
            XCTAssertEqual(unexpected, ["transformer_blocks.7.attn.to_q.weight"])
            XCTAssertEqual(misshaped, ["transformer_blocks.0.attn.to_k.weight [24, 23] (expected [24, 24])"])
            XCTAssertTrue("\(error)".contains("model.safetensors"))
        }
    }

    /// The weights of one config do not load under another: every tensor whose shape differs is named.
    func testWrongConfig() throws {
        let f = try FluxFixture("flux-a")
        var c = f.model.config
        c.jointAttentionDim = 32
        try c.write(to: dir.appendingPathComponent("config.json"))
        try FileManager.default.copyItem(at: f.directory.appendingPathComponent("model.safetensors"),
                                         to: dir.appendingPathComponent("model.safetensors"))
        XCTAssertThrowsError(try FluxCheckpoint.load(directory: dir)) { error in
            XCTAssertTrue("\(error)".contains("context_embedder.weight [24, 24] (expected [24, 32])"), "\(error)")
        }
    }

    /// Bad configs are clear errors.
    func testBadConfigs() throws {
        let url = dir.appendingPathComponent("config.json")
        for (json, needle) in [("{\"in_channels\": 48, \"axes_dims_rope\": [8, 12, 12], \"attention_head_dim\": 30}", "sum to 32"),
                               ("[1, 2]", "not a JSON object"),
                               ("{\"num_layers\": \"two\"}", "num_layers")] {
            try Data(json.utf8).write(to: url)
            XCTAssertThrowsError(try FluxConfig(contentsOf: url)) { XCTAssertTrue("\($0)".contains(needle), "\($0)") }
        }
        XCTAssertThrowsError(try FluxCheckpoint.load(directory: dir.appendingPathComponent("nothing")))
    }

    /// Fresh weights follow the documented init: adaLN projections and proj_out zero, RMSNorm weights one.
    func testRandomInit() throws {
        let w = FluxWeights.random(config: .mini, seed: 1)
        XCTAssertTrue(w["transformer_blocks.0.norm1.linear.weight"]!.array.allSatisfy { $0 == 0 })
        XCTAssertTrue(w["proj_out.weight"]!.array.allSatisfy { $0 == 0 })
        XCTAssertTrue(w["single_transformer_blocks.3.attn.norm_k.weight"]!.array.allSatisfy { $0 == 1 })
        XCTAssertFalse(w["transformer_blocks.1.attn.to_q.weight"]!.array.allSatisfy { $0 == 0 })
        XCTAssertEqual(FluxWeights.random(config: .mini, seed: 1).flat!.array, w.flat!.array)
    }
}
