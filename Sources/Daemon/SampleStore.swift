import EruDiff
import Foundation
import Tensors

/// The samples `sample` returned, kept for a while so that `rlStep` can learn from the caller's
/// rewards for them (`samples: [{id, reward}]`): each record holds the prompt, seed, settings and the
/// clean image x0 as the model made it (floats in [-1, 1], unclamped; 12 KiB for a 32×32 image).
///
/// Bounded by count (`--sample-store`, default 1024: the oldest go first) and by age
/// (`--sample-ttl`, default 3600 s). Ids are `s-<boot>-<n>`: `<boot>` is random per daemon start, so
/// an id from before a restart is reported as unknown instead of naming another image. Thread-safe
/// (the loop thread looks ids up when it checks `rlStep`'s parameters; the worker adds samples).
public final class SampleStore: @unchecked Sendable {
    public struct Record {
        public let id: String
        public let model: String
        public let prompt: String
        public let seed: UInt64
        public let settings: SamplingSettings
        /// The image `[H, W, C]` in [-1, 1].
        public let image: Tensor
        public let created: Date
    }

    public let limit: Int
    public let ttl: TimeInterval
    public let boot: String
    private let lock = NSLock()
    private var records: [String: Record] = [:]
    private var order: [String] = []     // oldest first
    private var next = 1

    public init(limit: Int, ttl: TimeInterval) {
        self.limit = max(1, limit)
        self.ttl = ttl
        boot = String(UInt32.random(in: 0x1000...0xFFFF), radix: 16)
    }

    /// Reserves the ids of `count` new samples (in order).
    public func reserveIDs(_ count: Int) -> [String] {
        lock.withLock {
            let ids = (0..<count).map { "s-\(boot)-\(next + $0)" }
            next += count
            return ids
        }
    }

    /// Keeps a sample (evicting the oldest beyond the limit).
    public func add(_ r: Record) {
        lock.withLock {
            expire(now: Date())
            if records[r.id] == nil { order.append(r.id) }
            records[r.id] = r
            while order.count > limit { records.removeValue(forKey: order.removeFirst()) }
        }
    }

    public enum Lookup {
        case found(Record)
        /// Issued by this daemon, dropped since (age or count limit).
        case expired
        case unknown
    }

    public func lookup(_ id: String) -> Lookup {
        lock.withLock {
            expire(now: Date())
            if let r = records[id] { return .found(r) }
            let prefix = "s-\(boot)-"
            if id.hasPrefix(prefix), let n = Int(id.dropFirst(prefix.count)), n >= 1, n < next { return .expired }
            return .unknown
        }
    }

    public var count: Int { lock.withLock { records.count } }

    /// Bytes of the images held.
    public var bytes: Int { lock.withLock { records.values.reduce(0) { $0 + $1.image.byteCount } } }

    private func expire(now: Date) {   // lock held
        while let first = order.first, let r = records[first], now.timeIntervalSince(r.created) > ttl {
            records.removeValue(forKey: first)
            order.removeFirst()
        }
    }
}
