import Foundation
import Models
import Tensors
import XCTest

/// The transformer's forward pass against diffusers' on both golden fixtures.
final class FluxForwardTests: XCTestCase {
    func check(_ name: String, training: Bool) throws {
        let f = try FluxFixture(name)
        let ws = try f.workspace(training: training)
        let out = try f.model.forward(try f.input(), workspace: ws)
        let ref = try f.tensor("out.sample")
        XCTAssertEqual(out.shape, ref.shape)
        let err = relativeError(out, ref)
        XCTAssertLessThan(err, 1e-4, "\(name) forward relative error \(err)")
        print("\(name) forward (training: \(training)) rel err \(err)")
    }

    func testFixtureAInference() throws { try check("flux-a", training: false) }
    func testFixtureATraining() throws { try check("flux-a", training: true) }
    func testFixtureBInference() throws { try check("flux-b", training: false) }
    func testFixtureBTraining() throws { try check("flux-b", training: true) }

    /// Running a smaller batch in a workspace made for more gives the same rows.
    func testSmallerBatchThanWorkspace() throws {
        let f = try FluxFixture("flux-a")
        let ws = try FluxWorkspace(config: f.model.config, batch: 5, positions: try f.positions(), training: false)
        let full = try f.input()
        let n = full.image.count / 2, l = full.text.count / 2, p = full.pooled.count / 2
        let one = FluxInput(image: Tensor(shape: [1] + Array(full.image.shape.dropFirst()), values: Array(full.image.array[n...])),
                            text: Tensor(shape: [1] + Array(full.text.shape.dropFirst()), values: Array(full.text.array[l...])),
                            pooled: Tensor(shape: [1, p], values: Array(full.pooled.array[p...])),
                            timesteps: [full.timesteps[1]])
        let out = try f.model.forward(one, workspace: ws)
        let ref = try f.tensor("out.sample")
        let refRow = Tensor(shape: [out.count], values: Array(ref.array[out.count...]))
        XCTAssertLessThan(relativeError(out, refRow), 1e-4)
    }
}
