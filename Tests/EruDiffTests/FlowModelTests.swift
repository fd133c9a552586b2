import Diffusion
import EruDiff
import Foundation
import Models
import Tensors
import World
import XCTest

final class FlowModelTests: XCTestCase {
    /// Context states have the model's fixed length with pads zeroed; the pooled vector is the text
    /// encoder's (normalised) sentence vector.
    func testEncode() throws {
        let m = try TinyModel.model()
        let t = try m.encode(["a red circle on a white background", "the flag of Japan"])
        XCTAssertEqual(t.states.shape, [2, 8, 384])
        XCTAssertEqual(t.pooled.shape, [2, 384])
        let e = try TinyModel.encoder.context(["the flag of Japan"], length: 8)
        let real = e.tokens.lengths[0]
        XCTAssertLessThan(real, 8)
        for k in (real * 384)..<(8 * 384) { XCTAssertEqual(t.states[8 * 384 + k], 0) }
        XCTAssertEqual(Array(t.pooled.array[384...]), e.pooled.array)
        var norm: Float = 0
        for k in 0..<384 { norm += t.pooled[k] * t.pooled[k] }
        XCTAssertEqual(norm, 1, accuracy: 1e-4)
    }

    /// A long prompt list is encoded in passes of `encodePassSize` (to bound the encoder's scratch
    /// memory); every prompt's states and pooled vector are those one pass over the whole list gives —
    /// bit for bit where the packed kernels run (their rows do not interact), else to float rounding.
    func testEncodeInPassesMatchesOnePass() throws {
        var rng = RNG(seed: 21)
        let prompts = (0..<(2 * FlowModel.encodePassSize + 9)).map { "\(Caption.random(&rng).text) \($0)" }
        let m = try TinyModel.model()
        let passes = try m.encode(prompts)
        let whole = try TinyModel.encoder.encoder.context(prompts, length: 8)
        XCTAssertEqual(passes.states.shape, whole.states.shape)
        XCTAssertEqual(passes.pooled.shape, whole.pooled.shape)
        if CPUKernels.current >= .avx2 {
            XCTAssertEqual(passes.states.array, whole.states.array)
            XCTAssertEqual(passes.pooled.array, whole.pooled.array)
        } else {
            for (a, b) in zip(passes.states.array + passes.pooled.array, whole.states.array + whole.pooled.array) {
                XCTAssertEqual(a, b, accuracy: 1e-5)
            }
        }
    }

    /// A model folder round trip (config.json, weights, erudiff.json), and clear errors for bad folders.
    func testLoadFolder() throws {
        let dir = TinyModel.temporaryDirectory("folder")
        let m = try TinyModel.model()
        try m.transformer.save(directory: dir)
        XCTAssertThrowsError(try FlowModel(directory: dir, encoder: TinyModel.encoder)) { e in
            XCTAssertTrue("\(e)".contains("erudiff.json"), "\(e)")
        }
        try m.pipeline.write(to: dir.appendingPathComponent(FluxPipelineConfig.fileName))
        let loaded = try FlowModel(directory: dir, encoder: TinyModel.encoder)
        XCTAssertEqual(loaded.name, dir.lastPathComponent)
        XCTAssertEqual(loaded.pipeline, m.pipeline)
        let a = try m.sample(prompts: ["a red circle"], seeds: [3], settings: SamplingSettings(steps: 3))
        let b = try loaded.sample(prompts: ["a red circle"], seeds: [3], settings: SamplingSettings(steps: 3))
        XCTAssertEqual(a.array, b.array)
        XCTAssertThrowsError(try FlowModel(directory: dir.appendingPathComponent("missing"), encoder: TinyModel.encoder))
        XCTAssertGreaterThan(loaded.memory.weights, 0)
    }

    /// Adapters: created as the identity change, saved and loaded as PEFT safetensors, switched off.
    func testAdapterLifecycle() throws {
        let m = try TinyModel.model()
        let settings = SamplingSettings(steps: 2, guidance: 3)
        let base = try m.sample(prompts: ["a blue star"], seeds: [1], settings: settings)
        let a = try m.createAdapter(rank: 4, alpha: 8, seed: 3)
        XCTAssertEqual(try m.sample(prompts: ["a blue star"], seeds: [1], settings: settings).array, base.array)
        var rng = RNG(seed: 9)
        rng.fillNormal(a.flat.data, count: a.flat.count, std: 0.1)
        let changed = try m.sample(prompts: ["a blue star"], seeds: [1], settings: settings)
        XCTAssertNotEqual(changed.array, base.array)
        var off = settings
        off.useAdapter = false
        XCTAssertEqual(try m.sample(prompts: ["a blue star"], seeds: [1], settings: off).array, base.array)
        let url = TinyModel.temporaryDirectory("adapter").appendingPathComponent("a.safetensors")
        try m.saveAdapter(to: url)
        m.removeAdapter()
        XCTAssertEqual(try m.sample(prompts: ["a blue star"], seeds: [1], settings: settings).array, base.array)
        let back = try m.loadAdapter(from: url)
        XCTAssertEqual(back.rank, 4)
        XCTAssertEqual(back.flat.array, a.flat.array)
        XCTAssertEqual(try m.sample(prompts: ["a blue star"], seeds: [1], settings: settings).array, changed.array)
        XCTAssertEqual(m.memory.adapter, a.flat.byteCount)
        try m.resetAdapter(seed: 3)
        XCTAssertEqual(try m.sample(prompts: ["a blue star"], seeds: [1], settings: settings).array, base.array)
    }

    /// An image depends on its prompt and seed only, not on the batch it is sampled in.
    func testBatchedSamplingIsPerImage() throws {
        let m = try TinyModel.model()
        let req = (0..<5).map { BatchedSampling.Request(prompt: ["a red circle", "a green heart"][$0 % 2], seed: UInt64(10 + $0)) }
        let s = SamplingSettings(steps: 3, guidance: 4)
        let all = try BatchedSampling(model: m, requests: req, settings: s, chunk: 2).run()
        let alone = try BatchedSampling(model: m, requests: [req[3]], settings: s, chunk: 1).run()
        let per = 64 * 48
        var worst: Float = 0
        for k in 0..<per { worst = max(worst, abs(all[3 * per + k] - alone[k])) }
        XCTAssertLessThan(worst, 1e-5)
        XCTAssertEqual(try m.pngs(m.packing.unpack(alone)).count, 1)
    }
}
