import Foundation
import Models
import Tensors
import XCTest

/// Gradients of the fixed loss Σ out·R against diffusers' autograd on both fixtures.
final class FluxBackwardTests: XCTestCase {
    func check(_ name: String) throws {
        let f = try FluxFixture(name)
        let ws = try f.workspace(training: true)
        let grads = FluxWeights.zeros(f.model.config)
        try f.model.forward(try f.input(), workspace: ws)
        try f.model.backward(outputGradient: try f.tensor("in.R"), workspace: ws, baseGradients: grads,
                             inputGradients: true)
        var checked = 0, worst = 0.0
        for key in f.io.names where key.hasPrefix("grad.param.") {
            let pname = String(key.dropFirst("grad.param.".count))
            guard let ours = grads[pname] else { XCTFail("no gradient for \(pname)"); continue }
            let err = relativeError(ours, try f.tensor(key))
            XCTAssertLessThan(err, 1e-3, "\(name) d/d \(pname): relative error \(err)")
            worst = max(worst, err); checked += 1
        }
        let ig = ws.inputGradients!
        for (key, ours) in [("hidden_states", ig.image), ("encoder_hidden_states", ig.text),
                            ("pooled_projections", ig.pooled)] {
            let err = relativeError(ours, try f.tensor("grad.input." + key))
            XCTAssertLessThan(err, 1e-3, "\(name) d/d \(key): relative error \(err)")
            worst = max(worst, err); checked += 1
        }
        XCTAssertGreaterThan(checked, 30)
        print("\(name): \(checked) gradients, worst relative error \(worst)")
    }

    func testFixtureA() throws { try check("flux-a") }
    func testFixtureB() throws { try check("flux-b") }

    /// Backward accumulates: two identical passes give twice the gradient.
    func testGradientsAccumulate() throws {
        let f = try FluxFixture("flux-a")
        let ws = try f.workspace(training: true)
        let once = FluxWeights.zeros(f.model.config), twice = FluxWeights.zeros(f.model.config)
        let r = try f.tensor("in.R")
        try f.model.forward(try f.input(), workspace: ws)
        try f.model.backward(outputGradient: r, workspace: ws, baseGradients: once)
        for _ in 0..<2 {
            try f.model.forward(try f.input(), workspace: ws)
            try f.model.backward(outputGradient: r, workspace: ws, baseGradients: twice)
        }
        let doubled = once.flat!.copy()
        for i in 0..<doubled.count { doubled[i] *= 2 }
        XCTAssertLessThan(relativeError(twice.flat!, doubled), 1e-6)
    }

    /// A no-grad forward in another workspace between a training forward and its backward changes
    /// nothing (the frozen reference model case).
    func testInferenceBetweenForwardAndBackward() throws {
        let f = try FluxFixture("flux-b")
        let ws = try f.workspace(training: true), other = try f.workspace(training: false)
        let g1 = FluxWeights.zeros(f.model.config), g2 = FluxWeights.zeros(f.model.config)
        let r = try f.tensor("in.R")
        try f.model.forward(try f.input(), workspace: ws)
        try f.model.backward(outputGradient: r, workspace: ws, baseGradients: g1)
        try f.model.forward(try f.input(), workspace: ws)
        var shifted = try f.input()
        shifted.timesteps = shifted.timesteps.map { 1 - $0 }
        try f.model.forward(shifted, workspace: other)
        try f.model.backward(outputGradient: r, workspace: ws, baseGradients: g2)
        XCTAssertEqual(g1.flat!.array, g2.flat!.array)
    }
}
