import Foundation
import Models
import Tensors
import XCTest

/// A golden fixture written by scripts/make-flux-fixture.py (diffusers + PEFT, float64 reference).
struct FluxFixture {
    let directory: URL
    let io: SafeTensors
    let model: FluxTransformer

    init(_ name: String) throws {
        directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("Fixtures").appendingPathComponent(name)
        io = try SafeTensors(contentsOf: directory.appendingPathComponent("io.safetensors"))
        model = try FluxTransformer.load(directory: directory)
    }

    func tensor(_ name: String) throws -> Tensor { try io.tensor(named: name) }

    var batch: Int { io.entries["in.timestep"]!.shape[0] }

    func positions() throws -> FluxPositions {
        func rows(_ t: Tensor) -> [[Float]] {
            (0..<t.shape[0]).map { i in (0..<t.shape[1]).map { t[i * t.shape[1] + $0] } }
        }
        return FluxPositions(text: rows(try tensor("in.txt_ids")), image: rows(try tensor("in.img_ids")))
    }

    func input() throws -> FluxInput {
        FluxInput(image: try tensor("in.hidden_states"), text: try tensor("in.encoder_hidden_states"),
                  pooled: try tensor("in.pooled_projections"), timesteps: try tensor("in.timestep").array,
                  guidance: io.contains("in.guidance") ? try tensor("in.guidance").array : nil)
    }

    func workspace(training: Bool) throws -> FluxWorkspace {
        try FluxWorkspace(config: model.config, batch: batch, positions: try positions(), training: training)
    }
}

/// ‖a − b‖ / ‖b‖ in double precision.
func relativeError(_ a: Tensor, _ b: Tensor, file: StaticString = #filePath, line: UInt = #line) -> Double {
    XCTAssertEqual(a.count, b.count, "element counts differ", file: file, line: line)
    var num = 0.0, den = 0.0
    for i in 0..<min(a.count, b.count) {
        let d = Double(a[i]) - Double(b[i])
        num += d * d
        den += Double(b[i]) * Double(b[i])
    }
    return (num / max(den, 1e-300)).squareRoot()
}
