import Foundation
import XCTest
import Tensors
import Models

final class TextEncoderTests: XCTestCase {
    /// The acceptance tolerance against transformers (release build).
    let tolerance: Float = 1e-4

    func testPooledVectorsMatchTheReferenceOnePromptAtATime() throws {
        let fixture = try MiniLMFixture.load()
        let encoder = try SharedEncoder.get()
        var worstMean: Float = 0, worstPooled: Float = 0
        for p in fixture.prompts {
            let e = try encoder.encode([p.text], maxLength: fixture.maxLength, padTo: nil)
            XCTAssertEqual(e.tokens.sequence(0), p.ids, p.text.debugDescription)
            let dm = maxAbsDiff(e.meanPooled(0), p.meanPooled), dp = maxAbsDiff(e.pooled(0), p.pooled)
            worstMean = max(worstMean, dm)
            worstPooled = max(worstPooled, dp)
            XCTAssertLessThan(dm, tolerance, "mean-pooled vector of \(p.text.debugDescription)")
            XCTAssertLessThan(dp, tolerance, "pooled vector of \(p.text.debugDescription)")
        }
        print("MiniLM vs transformers over \(fixture.prompts.count) prompts: max |Δ| mean-pooled \(worstMean), normalised \(worstPooled)")
    }

    func testTokenStatesMatchTheReference() throws {
        let fixture = try MiniLMFixture.load()
        let encoder = try SharedEncoder.get()
        let withStates = fixture.prompts.filter { $0.states != nil }
        XCTAssertGreaterThanOrEqual(withStates.count, 4)
        for p in withStates {
            let e = try encoder.encode([p.text], maxLength: fixture.maxLength, padTo: nil)
            XCTAssertEqual(e.states.shape, [1, p.ids.count, 384])
            let d = maxAbsDiff(e.states(0), p.states!)
            print("token states of \(p.text.prefix(30).debugDescription) (\(p.ids.count) tokens): max |Δ| \(d)")
            XCTAssertLessThan(d, tolerance, "token states of \(p.text.debugDescription)")
        }
    }

    func testPooledIsTheUnitLengthMean() throws {
        let encoder = try SharedEncoder.get()
        XCTAssertTrue(encoder.config.normalizesPooled, "modules.json of all-MiniLM-L6-v2 has a Normalize step")
        let e = try encoder.encode(["a ripe banana"])
        let mean = e.meanPooled(0), pooled = e.pooled(0)
        let norm = mean.reduce(0) { $0 + $1 * $1 }.squareRoot()
        XCTAssertEqual(pooled.reduce(0) { $0 + $1 * $1 }, 1, accuracy: 1e-5)
        XCTAssertLessThan(maxAbsDiff(pooled, mean.map { $0 / norm }), 1e-6)
    }

    func testBatchEqualsSinglePromptsAndTheReference() throws {
        let fixture = try MiniLMFixture.load()
        let encoder = try SharedEncoder.get()
        let texts = fixture.prompts.map(\.text)
        let batch = try encoder.encode(texts, maxLength: fixture.maxLength, padTo: nil)
        XCTAssertEqual(batch.tokens.length, 32)
        var worstSingle: Float = 0
        for (i, p) in fixture.prompts.enumerated() {
            XCTAssertEqual(batch.tokens.sequence(i), p.ids)
            XCTAssertLessThan(maxAbsDiff(batch.pooled(i), p.pooled), tolerance, p.text.debugDescription)
            XCTAssertLessThan(maxAbsDiff(batch.meanPooled(i), p.meanPooled), tolerance, p.text.debugDescription)
            if let states = p.states {
                XCTAssertLessThan(maxAbsDiff(batch.states(i), states), tolerance, p.text.debugDescription)
            }
            let single = try encoder.encode([p.text], maxLength: fixture.maxLength, padTo: nil)
            worstSingle = max(worstSingle, maxAbsDiff(batch.meanPooled(i), single.meanPooled(0)),
                              maxAbsDiff(batch.states(i), single.states(0)))
            // Padding rows of the batch are zero.
            let t = batch.tokens.length, d = 384
            let pad = UnsafeBufferPointer(start: batch.states.data + (i * t + p.ids.count) * d,
                                          count: (t - p.ids.count) * d)
            XCTAssert(pad.allSatisfy { $0 == 0 }, "padding states of \(p.text.debugDescription) are not zero")
        }
        print("batch of \(texts.count) vs one at a time: max |Δ| \(worstSingle)")
        XCTAssertLessThan(worstSingle, 1e-5, "a prompt's encoding depends on its batch")
    }

    func testContextIsFixedLengthWithZeroPadding() throws {
        let encoder = try SharedEncoder.get()
        let prompts = ["", "the flag of Japan", String(repeating: "a red circle ", count: 20)]
        let c = try encoder.context(prompts, length: 16)
        XCTAssertEqual(c.states.shape, [3, 16, 384])
        XCTAssertEqual(c.pooled.shape, [3, 384])
        XCTAssertEqual(c.tokens.lengths, [2, 6, 16])
        let plain = try encoder.encode(prompts, maxLength: 16, padTo: nil)
        for i in 0..<3 {
            XCTAssertLessThan(maxAbsDiff(c.states(i), plain.states(i)), 1e-6)
            XCTAssertLessThan(maxAbsDiff(c.pooled(i), plain.pooled(i)), 1e-6)
            let n = c.tokens.lengths[i]
            let rest = UnsafeBufferPointer(start: c.states.data + (i * 16 + n) * 384, count: (16 - n) * 384)
            XCTAssert(rest.allSatisfy { $0 == 0 })
            XCTAssert(c.states(i).contains { $0 != 0 })
        }
        let def = try encoder.context(["a stop sign"])
        XCTAssertEqual(def.states.shape, [1, 32, 384])
    }

    func testEmptyBatchAndBadInput() throws {
        let encoder = try SharedEncoder.get()
        let none = try encoder.encode([])
        XCTAssertEqual(none.count, 0)
        XCTAssertEqual(none.pooled.shape, [0, 384])
        XCTAssertThrowsError(try encoder.encode(["x"], maxLength: 600, padTo: nil))
        XCTAssertThrowsError(try encoder.model.forward(TokenBatch(sequences: [[101, 40_000, 102]])))
        XCTAssertThrowsError(try TextEncoder(folder: encoder.folder, maxLength: 1))
    }

    func testWeightsAreMemoryMappedAndScratchIsReused() throws {
        let encoder = try SharedEncoder.get()
        let w = encoder.model.weights
        XCTAssertTrue(w.wordEmbeddings.isBorrowed)
        XCTAssertTrue(w.layers[5].output.isBorrowed)
        XCTAssertEqual(w.layers.count, 6)
        let model = MiniLM(config: encoder.config, weights: w)
        let batch = try encoder.tokenizer.encode(["a red circle", "the flag of Japan"], padTo: 12)
        _ = try model.forward(batch)
        let bytes = model.scratchBytes
        XCTAssertGreaterThan(bytes, 0)
        let a = try model.forward(batch)
        let b = try model.forward(try encoder.tokenizer.encode(["a stop sign"], padTo: 8))
        XCTAssertEqual(model.scratchBytes, bytes, "a smaller call must reuse the working memory")
        XCTAssertEqual(a.meanPooled.shape, [2, 384])
        XCTAssertEqual(b.states.shape, [1, 8, 384])
    }

    func testConcurrentCallsGiveTheSameResults() throws {
        let encoder = try SharedEncoder.get()
        let prompts = ["a red circle on a white background", "the sky at midnight", "a full moon", ""]
        let expected = try encoder.encode(prompts)
        var results = [TextEncoding?](repeating: nil, count: 8)
        let lock = NSLock()
        DispatchQueue.concurrentPerform(iterations: 8) { i in
            let r = try? encoder.encode(prompts)
            lock.lock(); results[i] = r; lock.unlock()
        }
        for r in results {
            let r = try XCTUnwrap(r)
            XCTAssertEqual(r.pooled.array, expected.pooled.array)
        }
    }
}
