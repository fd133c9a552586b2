import Foundation
import Models
import Tensors
import XCTest

/// Sharded passes (the batch cut over threads) give what one unsharded pass gives.
final class FluxShardingTests: XCTestCase {
    func testShardedMatchesUnsharded() throws {
        for name in ["flux-a", "flux-b"] {
            let f = try FluxFixture(name)
            f.model.adapter = try LoRAAdapter.load(from: f.directory.appendingPathComponent("lora.safetensors"),
                                                   config: f.model.config)
            var results: [[Float]] = []
            for shards in [1, 2] {
                let ws = try FluxWorkspace(config: f.model.config, batch: f.batch, positions: try f.positions(),
                                           training: true, shards: shards)
                let base = FluxWeights.zeros(f.model.config), lora = f.model.adapter!.zerosLike()
                let out = try f.model.forward(try f.input(), workspace: ws).copy()
                try f.model.backward(outputGradient: try f.tensor("in.R"), workspace: ws, baseGradients: base,
                                     adapterGradients: lora, inputGradients: true)
                let ig = ws.inputGradients!
                results.append(out.array + base.flat!.array + lora.flat.array + ig.image.array + ig.text.array + ig.pooled.array)
                XCTAssertLessThan(relativeError(out, try f.tensor("lora.out.sample")), 1e-4)
            }
            let a = Tensor(shape: [results[0].count], values: results[0])
            let b = Tensor(shape: [results[1].count], values: results[1])
            XCTAssertLessThan(relativeError(b, a), 1e-6, name)
        }
    }
}

extension FluxShardingTests {
    /// One sample in a workspace made for more (so not cut): its input gradients are the fixture's rows.
    func testSingleRowInShardedWorkspace() throws {
        let f = try FluxFixture("flux-b")
        let ws = try FluxWorkspace(config: f.model.config, batch: 4, positions: try f.positions(), training: true, shards: 2)
        let full = try f.input()
        func row1(_ t: Tensor) -> Tensor {
            let per = t.count / 2
            return Tensor(shape: [1] + Array(t.shape.dropFirst()), values: Array(t.array[per...]))
        }
        let one = FluxInput(image: row1(full.image), text: row1(full.text), pooled: row1(full.pooled),
                            timesteps: [full.timesteps[1]], guidance: full.guidance.map { [$0[1]] })
        let out = try f.model.forward(one, workspace: ws)
        XCTAssertLessThan(relativeError(out, row1(try f.tensor("out.sample"))), 1e-4)
        try f.model.backward(outputGradient: row1(try f.tensor("in.R")), workspace: ws, inputGradients: true)
        let ig = ws.inputGradients!
        let img = Tensor(shape: [out.count / 12 * 12], values: Array(ig.image.array[0..<(256 * 12)]))
        XCTAssertLessThan(relativeError(img, row1(try f.tensor("grad.input.hidden_states"))), 1e-3)
    }
}
