import Foundation
import Tensors

/// A bounded least-recently-used cache of prompt encodings in front of a `TextEncoder`.
///
/// Keyed by the prompt text (compared as Unicode scalars, not by canonical equivalence, since the
/// tokenizer tells such strings apart) and the maximum length. Repeated prompts — the empty prompt of
/// guidance, the anchors of a training run — are encoded once; the prompts a call misses are encoded
/// together in one batch. Thread-safe: the cache is guarded by a lock, and encoding happens outside it.
public final class EncodingCache: PromptEncoder, @unchecked Sendable {
    /// What is kept per prompt: its ids, the states of its real tokens, and its two pooled vectors.
    private struct Entry {
        let ids: [Int32]
        let states: [Float]
        let meanPooled: [Float]
        let pooled: [Float]
    }

    private struct Key: Hashable {
        let text: [UInt8]
        let maxLength: Int
    }

    /// A node of the recency list (most recent at `head`).
    private final class Node {
        let key: Key
        let entry: Entry
        var newer: Node?
        weak var older: Node?  // (newer links own; older links are weak to avoid cycles)
        init(key: Key, entry: Entry) { self.key = key; self.entry = entry }
    }

    public let encoder: TextEncoder
    /// Most entries kept; the least recently used is dropped beyond it.
    public let capacity: Int

    private let lock = NSLock()
    private var nodes: [Key: Node] = [:]
    private var newest: Node?
    private var oldest: Node?
    private var hitCount = 0
    private var missCount = 0

    /// A cache of at most `capacity` prompts (≥ 1) in front of `encoder`.
    public init(encoder: TextEncoder, capacity: Int = 256) {
        self.encoder = encoder
        self.capacity = max(1, capacity)
    }

    public var maxLength: Int { encoder.maxLength }

    /// Lookups answered from the cache, and lookups that needed the encoder.
    public var hits: Int { lock.lock(); defer { lock.unlock() }; return hitCount }
    public var misses: Int { lock.lock(); defer { lock.unlock() }; return missCount }
    /// Prompts currently held.
    public var count: Int { lock.lock(); defer { lock.unlock() }; return nodes.count }

    /// Drops every entry (the counters are kept).
    public func removeAll() {
        lock.lock(); defer { lock.unlock() }
        nodes.removeAll()
        newest = nil
        oldest = nil
    }

    /// Whether `prompt` at `maxLength` (the default when nil) is cached; does not touch recency.
    public func contains(_ prompt: String, maxLength: Int? = nil) -> Bool {
        lock.lock(); defer { lock.unlock() }
        return nodes[Key(text: Array(prompt.utf8), maxLength: maxLength ?? encoder.maxLength)] != nil
    }

    public func encode(_ prompts: [String], maxLength: Int? = nil, padTo: Int? = nil) throws -> TextEncoding {
        let limit = maxLength ?? encoder.maxLength
        let keys = prompts.map { Key(text: Array($0.utf8), maxLength: limit) }
        var entries = [Entry?](repeating: nil, count: prompts.count)
        var missing: [Int] = []  // first index of each distinct missing prompt
        var firstIndex: [Key: Int] = [:]

        lock.lock()
        for (i, key) in keys.enumerated() {
            if let node = nodes[key] {
                touch(node)
                entries[i] = node.entry
                hitCount += 1
            } else if firstIndex[key] == nil {
                firstIndex[key] = i
                missing.append(i)
                missCount += 1
            } else {
                hitCount += 1  // a repeat within the call is encoded once
            }
        }
        lock.unlock()

        if !missing.isEmpty {
            let fresh = try encoder.encode(missing.map { prompts[$0] }, maxLength: limit, padTo: nil)
            lock.lock()
            for (j, i) in missing.enumerated() {
                let entry = Entry(ids: fresh.tokens.sequence(j), states: fresh.states(j),
                                  meanPooled: fresh.meanPooled(j), pooled: fresh.pooled(j))
                entries[i] = entry
                insert(keys[i], entry)
            }
            lock.unlock()
        }
        for (i, key) in keys.enumerated() where entries[i] == nil { entries[i] = entries[firstIndex[key]!] }
        return try assemble(entries.map { $0! }, padTo: padTo)
    }

    /// Builds the batch result from per-prompt entries.
    private func assemble(_ entries: [Entry], padTo: Int?) throws -> TextEncoding {
        let batch = try TokenBatchBuilder.batch(entries.map(\.ids), padTo: padTo, padID: encoder.tokenizer.padID)
        let b = entries.count, t = batch.length, d = encoder.config.hiddenSize
        let states = Tensor(zeros: [b, t, d])
        let mean = Tensor(zeros: [b, d])
        let pooled = Tensor(zeros: [b, d])
        for (i, e) in entries.enumerated() {
            e.states.withUnsafeBufferPointer { (states.data + i * t * d).update(from: $0.baseAddress!, count: $0.count) }
            e.meanPooled.withUnsafeBufferPointer { (mean.data + i * d).update(from: $0.baseAddress!, count: d) }
            e.pooled.withUnsafeBufferPointer { (pooled.data + i * d).update(from: $0.baseAddress!, count: d) }
        }
        return TextEncoding(tokens: batch, states: states, meanPooled: mean, pooled: pooled)
    }

    // MARK: recency list (call with the lock held)

    private func touch(_ node: Node) {
        guard newest !== node else { return }
        unlink(node)
        pushNewest(node)
    }

    private func insert(_ key: Key, _ entry: Entry) {
        if let old = nodes[key] { unlink(old) }
        let node = Node(key: key, entry: entry)
        nodes[key] = node
        pushNewest(node)
        while nodes.count > capacity, let victim = oldest {
            unlink(victim)
            nodes[victim.key] = nil
        }
    }

    private func pushNewest(_ node: Node) {
        node.older = newest
        node.newer = nil
        newest?.newer = node
        newest = node
        if oldest == nil { oldest = node }
    }

    private func unlink(_ node: Node) {
        let older = node.older, newer = node.newer
        older?.newer = newer
        newer?.older = older
        if newest === node { newest = older }
        if oldest === node { oldest = newer }
        node.older = nil
        node.newer = nil
    }
}

/// Pads id sequences into a `TokenBatch`, checking a requested length.
enum TokenBatchBuilder {
    static func batch(_ sequences: [[Int32]], padTo: Int?, padID: Int32) throws -> TokenBatch {
        let longest = sequences.map(\.count).max() ?? 0
        if let padTo, padTo < longest {
            throw TextEncoderError.invalidArgument("padTo \(padTo) is shorter than a row of \(longest) tokens")
        }
        return TokenBatch(sequences: sequences, length: padTo, padID: padID)
    }
}
