import World

/// NO-RL's built-in reward: how the world verifier's reading of a sample scores against what its
/// prompt should show.
public enum WorldReward: String, CaseIterable, Codable, Equatable, Sendable {
    /// The knowledge score of DESIGN §5: the fraction of the expected attributes found. A group whose
    /// samples all get the same attributes wrong (say, every one a blob read as a pentagon where a
    /// circle belongs) has equal rewards and teaches nothing.
    case score
    /// The score, with a wrong shape credited by how near the object came to the expected one: half
    /// the expected template's fit (`Verification.shapeFit`, in [0, 1]) where a right shape gets 1.
    /// A right shape still outscores every wrong one, and all right samples tie as before (their
    /// fits are not compared: the differences between clean outlines are the verifier's noise); only
    /// the wrong ones are ranked among themselves, so groups that get the outline wrong everywhere
    /// push the policy away from its worst attempts rather than being skipped.
    case graded

    /// The reward of one sample whose reading is `v`, against `expected`.
    public func reward(_ v: Verification, expected: Attributes) -> Double {
        let score = KnowledgeMetrics.score(found: v.attributes, expected: expected)
        guard self == .graded, v.foundObject, let shape = expected.shape, v.attributes.shape != shape else { return score }
        return score + 0.5 * Double(v.shapeFit[shape] ?? 0) / Double(expected.namedCount)
    }
}
