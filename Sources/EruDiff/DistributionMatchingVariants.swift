import Diffusion
import Foundation
import Models
import Tensors
import World

extension DistributionMatching {
    /// DK-DM's two options that were measured and not adopted, off by default and kept out of its path
    /// (the run asks them which anchors to draw and to train on, and the matching rows' targets):
    ///
    /// - `verifyAnchors`: train only on reference anchors the world verifier reads as their explicit
    ///   prompt states (`VerifiedAnchors`); the dislocation is still measured on every anchor.
    ///   Figures: docs/experiments/2026-12-05-verified-anchors.md.
    /// - `matchTarget` `.anchor`: the implicit rows are trained towards the anchor's own velocity ε − x0
    ///   instead of v_ref(x_t,t,c_e) — fine-tuning on the anchors, not DK-DM (the keep and replay terms are
    ///   unchanged), and the reference forward leaves out the implicit rows that carry no keep rows.
    ///   Figures: docs/experiments/2026-12-06-verified-samples-target.md.
    struct Variants {
        var verified: VerifiedAnchors?
        /// The matching rows' own flow velocities ε − x0, with the anchor target.
        private(set) var anchorVelocity: Tensor?

        init(options: DistributionMatchingOptions, pairs: [KnowledgePair], packing: FluxPacking) throws {
            if options.verifyAnchors {
                verified = try VerifiedAnchors(pairs: pairs, perPair: options.anchorsPerPair,
                                               maxDraws: options.maxAnchorDraws ?? 3 * options.anchorsPerPair)
            }
            if options.matchTarget == .anchor { anchorVelocity = Tensor(zeros: [options.batchSize, packing.tokens, packing.tokenChannels]) }
        }

        /// Keeps matching row `row`'s flow velocity for the anchor target.
        func noteVelocity(row: Int, x0: UnsafePointer<Float>, noise: UnsafePointer<Float>, count: Int) {
            if let v = anchorVelocity { FlowMatching.velocity(x0: x0, noise: noise, into: v.data + row * count, count: count) }
        }

        /// The reference rows the step needs no output of: with the anchor target, the matching rows past
        /// the keep rows (which reuse the first `keepRows`).
        func unusedReferenceRows(batch: Int, keepRows: Int) -> Range<Int> {
            anchorVelocity == nil ? batch..<batch : keepRows..<batch
        }
    }
}

/// Which reference anchors DK-DM trains on when its anchors are verified: the reference model draws
/// each explicit prompt right only most of the time, and matching the implicit prompt to every draw
/// would teach it the misses too. With verification the run
/// keeps drawing anchors of a pair (in the bank's index order) until `perPair` of them verify as the
/// attributes its explicit caption states, or `maxDraws` have been drawn; it then trains on the first
/// `perPair` accepted ones. A pair none of whose draws verifies trains on its first `perPair` anchors
/// as without verification, and is counted.
///
/// The choice depends only on the bank's images, so a resumed run, or one given a bank that already
/// holds more anchors, chooses the same anchors as a fresh one.
public struct VerifiedAnchors {
    public struct Report: Codable, Equatable, Sendable {
        /// Anchors verified over the pairs' explicit prompts (each prompt once).
        public var verified: Int
        /// Of them, accepted.
        public var accepted: Int
        /// Prompts with fewer than `perPair` accepted anchors after `maxDraws` draws.
        public var short: Int
        /// Prompts with none (their pairs train on unverified anchors).
        public var none: Int

        public init(verified: Int, accepted: Int, short: Int, none: Int) {
            self.verified = verified; self.accepted = accepted; self.short = short; self.none = none
        }
    }

    let prompts: [String]
    let expected: [Attributes]
    let perPair: Int
    let maxDraws: Int
    /// Verdicts per explicit prompt, by anchor index (grows as the bank does).
    private var verdicts: [String: [Bool]] = [:]
    /// The first `perPair` accepted indices per explicit prompt, kept with the verdicts so that a
    /// training step reads them instead of filtering the verdicts for every batch row.
    private var accepted: [String: [Int]] = [:]

    /// Throws when an explicit prompt states no shape the verifier could check.
    init(pairs: [KnowledgePair], perPair: Int, maxDraws: Int) throws {
        prompts = pairs.map(\.explicit)
        expected = try pairs.map { p in
            guard let a = Caption.parse(p.explicit) else {
                throw EruDiffError.invalidArgument("anchors.verify: the explicit prompt of '\(p.id)' ('\(p.explicit)') is not a caption of the world the verifier can check")
            }
            return a
        }
        self.perPair = perPair
        self.maxDraws = max(maxDraws, perPair)
    }

    /// Verifies the bank's anchors of the pairs not verified yet (up to `maxDraws` per prompt).
    mutating func update(bank: AnchorBank, packing: FluxPacking) throws {
        let verifier = Verifier()
        for (p, prompt) in prompts.enumerated() {
            var list = verdicts[prompt, default: []]
            let available = min(bank.count(prompt), maxDraws)
            guard list.count < available else { continue }
            for j in list.count..<available {
                let image = packing.unpack(bank.anchor(prompt, j)!)
                let v = try verifier.verify(signedUnit: image.data, width: packing.width, height: packing.height)
                list.append(KnowledgeMetrics.isCorrect(found: v.attributes, expected: expected[p]))
            }
            verdicts[prompt] = list
            accepted[prompt] = Array(list.indices.filter { list[$0] }.prefix(perPair))
        }
    }

    private func acceptedIndices(_ prompt: String) -> [Int] { accepted[prompt] ?? [] }

    /// Anchor counts to fill the bank to: each prompt short of `perPair` accepted anchors gets as many
    /// more draws as it lacks accepted ones (never past `maxDraws`). Empty when no more draws are needed.
    func targets(bank: AnchorBank) -> [(prompt: String, count: Int)] {
        var out: [(prompt: String, count: Int)] = [], seen = Set<String>()
        for prompt in prompts where seen.insert(prompt).inserted {
            let have = bank.count(prompt)
            guard have < perPair else {
                let lacking = perPair - acceptedIndices(prompt).count
                let drawn = verdicts[prompt]?.count ?? 0
                if lacking > 0 && drawn < maxDraws { out.append((prompt, min(maxDraws, drawn + lacking))) }
                continue
            }
            out.append((prompt, perPair))
        }
        return out
    }

    /// The bank index of an anchor of pair `p` to train on, drawn from `rng`.
    func anchor(pair p: Int, _ rng: inout RNG) -> Int {
        let a = acceptedIndices(prompts[p]), usable = a.isEmpty ? Array(0..<perPair) : a
        return usable[rng.int(below: usable.count)]
    }

    var report: Report {
        var r = Report(verified: 0, accepted: 0, short: 0, none: 0)
        for prompt in Set(prompts) {
            let v = verdicts[prompt] ?? []
            r.verified += v.count
            r.accepted += v.filter { $0 }.count
            let n = acceptedIndices(prompt).count
            if n < perPair { r.short += 1 }
            if n == 0 { r.none += 1 }
        }
        return r
    }
}
