import Foundation
import XCTest
import Models

final class EncodingCacheTests: XCTestCase {
    func testRepeatedPromptsAreNotReencoded() throws {
        let encoder = try SharedEncoder.get()
        let cache = EncodingCache(encoder: encoder, capacity: 8)
        let first = try cache.encode(["a stop sign", "the flag of Japan", "a stop sign"])
        XCTAssertEqual(cache.misses, 2)
        XCTAssertEqual(cache.hits, 1)
        XCTAssertEqual(first.pooled(0), first.pooled(2))
        let second = try cache.encode(["the flag of Japan", ""])
        XCTAssertEqual(cache.misses, 3)
        XCTAssertEqual(cache.hits, 2)
        XCTAssertEqual(second.pooled(0), first.pooled(1))
        XCTAssertEqual(second.tokens.lengths, [6, 2])
        let direct = try encoder.encode(["the flag of Japan", ""])
        XCTAssertLessThan(maxAbsDiff(second.states.array, direct.states.array), 1e-5)
        XCTAssertLessThan(maxAbsDiff(second.meanPooled.array, direct.meanPooled.array), 1e-5)
        XCTAssertEqual(second.tokens, direct.tokens)
    }

    func testLeastRecentlyUsedIsEvicted() throws {
        let cache = EncodingCache(encoder: try SharedEncoder.get(), capacity: 2)
        _ = try cache.encode(["a"])
        _ = try cache.encode(["b"])
        _ = try cache.encode(["a"])  // a is now the most recent
        _ = try cache.encode(["c"])  // evicts b
        XCTAssertEqual(cache.count, 2)
        XCTAssertTrue(cache.contains("a"))
        XCTAssertFalse(cache.contains("b"))
        XCTAssertTrue(cache.contains("c"))
        XCTAssertEqual(cache.misses, 3)
        XCTAssertEqual(cache.hits, 1)
        _ = try cache.encode(["b"])  // evicts a
        XCTAssertFalse(cache.contains("a"))
        XCTAssertEqual(cache.misses, 4)
        cache.removeAll()
        XCTAssertEqual(cache.count, 0)
    }

    func testMaxLengthIsPartOfTheKeyAndContextPads() throws {
        let cache = EncodingCache(encoder: try SharedEncoder.get(), capacity: 4)
        let long = String(repeating: "a red circle ", count: 20)
        let full = try cache.encode([long])
        let short = try cache.encode([long], maxLength: 8, padTo: nil)
        XCTAssertEqual(cache.misses, 2)
        XCTAssertEqual(full.tokens.length, 32)
        XCTAssertEqual(short.tokens.length, 8)
        let ctx = try cache.context(["the sky at noon"], length: 16)
        XCTAssertEqual(ctx.states.shape, [1, 16, 384])
        XCTAssert(UnsafeBufferPointer(start: ctx.states.data + 6 * 384, count: 10 * 384).allSatisfy { $0 == 0 })
        XCTAssertThrowsError(try cache.encode([long], maxLength: 8, padTo: 4))
    }

    func testCanonicallyEquivalentPromptsAreSeparateKeys() throws {
        let cache = EncodingCache(encoder: try SharedEncoder.get(), capacity: 4)
        _ = try cache.encode(["\u{D55C}"])
        XCTAssertFalse(cache.contains("\u{1112}\u{1161}\u{11AB}"))
    }

    func testConcurrentUseKeepsCountsAndResultsConsistent() throws {
        let encoder = try SharedEncoder.get()
        let cache = EncodingCache(encoder: encoder, capacity: 3)
        let prompts = ["a red circle", "a blue square", "a green triangle", "a yellow star", "a full moon"]
        let expected = try encoder.encode(prompts)
        let lock = NSLock()
        var failures = 0
        DispatchQueue.concurrentPerform(iterations: 40) { i in
            let p = prompts[i % prompts.count]
            guard let r = try? cache.encode([p]) else { lock.lock(); failures += 1; lock.unlock(); return }
            let j = i % prompts.count
            if maxAbsDiff(r.pooled(0), expected.pooled(j)) > 1e-5 { lock.lock(); failures += 1; lock.unlock() }
        }
        XCTAssertEqual(failures, 0)
        XCTAssertEqual(cache.hits + cache.misses, 40)
        XCTAssertLessThanOrEqual(cache.count, 3)
    }
}
