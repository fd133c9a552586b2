import Diffusion
import Models
import Tensors
import XCTest

/// The step-driven sampler: reproducibility, batch independence, guidance, progress and stopping.
final class SamplerTests: XCTestCase {
    let model = Tiny.model()
    let prompts = Tiny.text(3, seed: 11)
    let empty = Tiny.text(1, seed: 12)

    func sample(_ text: TextConditioning, seeds: [UInt64], guidance: Float? = 4, method: FlowSampler.Method = .ode,
                steps: Int = 6) throws -> Tensor {
        let s = try FlowSampler(model: model, packing: Tiny.packing, prompts: text, unconditional: empty,
                                guidance: guidance, seeds: seeds, steps: steps, shift: .fixed(2), method: method)
        try s.run()
        return s.images()
    }

    func testSameSeedSamePixels() throws {
        for method in [FlowSampler.Method.ode, .sde(noiseLevel: 0.7)] {
            let a = try sample(prompts, seeds: [1, 2, 3], method: method)
            let b = try sample(prompts, seeds: [1, 2, 3], method: method)
            XCTAssertEqual(a.array, b.array)
            XCTAssertEqual(a.shape, [3, 8, 8, 3])
            let c = try sample(prompts, seeds: [1, 2, 4], method: method)
            XCTAssertNotEqual(Array(a.array[384...]), Array(c.array[384...]), "another seed, another image")
        }
    }

    /// Image i is the same alone or in a batch with other prompts and seeds (ODE and SDE).
    func testBatchCompositionDoesNotMatter() throws {
        for method in [FlowSampler.Method.ode, .sde(noiseLevel: 0.7)] {
            let batch = try sample(prompts, seeds: [5, 6, 7], method: method)
            let alone = try sample(Tiny.rows(prompts, [1]), seeds: [6], method: method)
            let per = alone.count
            let row = Tensor(shape: [per], values: Array(batch.array[per..<(2 * per)]))
            var maxDiff: Float = 0
            for i in 0..<per { maxDiff = max(maxDiff, abs(row[i] - alone[i])) }
            print("batch composition \(method): max difference \(maxDiff)")
            XCTAssertLessThanOrEqual(maxDiff, 1e-5, "\(method): batch row differs from the lone sample by \(maxDiff)")
        }
    }

    /// Guidance 1 (conditional and unconditional rows both evaluated) equals the conditional branch alone.
    func testGuidanceOneIsConditional() throws {
        let guided = try sample(prompts, seeds: [1, 2, 3], guidance: 1)
        let plain = try sample(prompts, seeds: [1, 2, 3], guidance: nil)
        var maxDiff: Float = 0
        for i in 0..<guided.count { maxDiff = max(maxDiff, abs(guided[i] - plain[i])) }
        XCTAssertLessThanOrEqual(maxDiff, 1e-5)
        let strong = try sample(prompts, seeds: [1, 2, 3], guidance: 4)
        XCTAssertNotEqual(strong.array, plain.array)
    }

    /// The caller drives the loop: progress per step, stop at any step, resume, nil when done.
    func testStepByStep() throws {
        let s = try FlowSampler(model: model, packing: Tiny.packing, prompts: prompts, unconditional: empty,
                                guidance: 3, seeds: [1, 2, 3], steps: 4)
        let start = s.tokens.copy()
        let p1 = try s.next()
        XCTAssertEqual(p1, FlowSampler.Progress(step: 1, steps: 4, sigma: 0.75))
        XCTAssertFalse(s.isFinished)
        XCTAssertNotEqual(s.tokens.array, start.array)
        while let p = try s.next() { XCTAssertLessThanOrEqual(p.step, 4) }
        XCTAssertTrue(s.isFinished)
        XCTAssertEqual(s.step, 4)
        XCTAssertNil(try s.next())
        let whole = try FlowSampler(model: model, packing: Tiny.packing, prompts: prompts, unconditional: empty,
                                    guidance: 3, seeds: [1, 2, 3], steps: 4)
        try whole.run()
        XCTAssertEqual(whole.images().array, s.images().array)
    }

    /// The initial noise of image i is RNG(seed: seed_i)'s normals.
    func testInitialNoiseComesFromTheSeed() throws {
        let s = try FlowSampler(model: model, packing: Tiny.packing, prompts: prompts, seeds: [9, 8, 7], steps: 2)
        var rng = RNG(seed: 8)
        let per = Tiny.packing.tokens * Tiny.packing.tokenChannels
        var expect = [Float](repeating: 0, count: per)
        rng.fillNormal(&expect, count: per)
        XCTAssertEqual(Array(s.tokens.array[per..<(2 * per)]), expect)
    }

    func testBadArguments() {
        XCTAssertThrowsError(try FlowSampler(model: model, packing: Tiny.packing, prompts: prompts, seeds: [1], steps: 2))
        XCTAssertThrowsError(try FlowSampler(model: model, packing: Tiny.packing, prompts: prompts, guidance: 2,
                                             seeds: [1, 2, 3], steps: 2))
        XCTAssertThrowsError(try FlowSampler(model: model, packing: Tiny.packing, prompts: prompts, seeds: [1, 2, 3], steps: 0))
        let wrong = try! FluxPacking(height: 8, width: 8, channels: 3, patch: 4)
        XCTAssertThrowsError(try FlowSampler(model: model, packing: wrong, prompts: prompts, seeds: [1, 2, 3], steps: 2))
    }
}
