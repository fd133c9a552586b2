import Foundation
import Models
import Tensors
import XCTest

/// Inference passes read packed copies of the weights (`FluxPackedWeights`); a change made in place and
/// announced with `markChanged()` must be seen by the next inference pass, exactly as a training pass
/// (which reads the weights directly) sees it.
final class FluxPackedInferenceTests: XCTestCase {
    func testInPlaceChangeIsSeenAfterMarkChanged() throws {
        let f = try FluxFixture("flux-a")
        let inference = try f.workspace(training: false), training = try f.workspace(training: true)
        let input = try f.input()
        let before = try f.model.forward(input, workspace: inference).array
        for w in [f.model.weights.projOut.weight, f.model.weights.singleBlocks[0].projOut.weight,
                  f.model.weights.doubleBlocks[0].toQ.weight] {
            for i in 0..<w.count { w[i] *= 1.5 }
        }
        f.model.weights.markChanged()
        let after = try f.model.forward(input, workspace: inference).array
        let direct = try f.model.forward(input, workspace: training).array
        XCTAssertGreaterThan(relativeError(Tensor(shape: [after.count], values: after),
                                           Tensor(shape: [before.count], values: before)), 1e-2,
                             "the change should move the output")
        XCTAssertLessThan(relativeError(Tensor(shape: [after.count], values: after),
                                        Tensor(shape: [direct.count], values: direct)), 1e-5)
    }
}
