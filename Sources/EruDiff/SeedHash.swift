/// Seeds derived from names, so that what a procedure draws for a prompt depends only on the run's
/// seed, the prompt's text and an index — never on batch composition or order. Two runs with the same
/// seed agree exactly, and an image of (prompt, index) is the same wherever it is sampled (which lets
/// evaluation sample each distinct prompt once, and anchors be cached and extended).
public enum SeedHash {
    /// 64-bit FNV-1a of the UTF-8 bytes of `text`.
    public static func fnv1a(_ text: String) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for b in text.utf8 {
            h ^= UInt64(b)
            h = h &* 0x0000_0100_0000_01B3
        }
        return h
    }

    /// SplitMix64's finaliser: a bijective mix of 64 bits.
    public static func mix(_ x: UInt64) -> UInt64 {
        var z = x &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// The seed of item `index` of `text` under run seed `base`.
    public static func seed(_ base: UInt64, _ text: String, _ index: Int = 0) -> UInt64 {
        mix(mix(base ^ 0x6572_7564_6966_6600) ^ fnv1a(text) ^ mix(UInt64(truncatingIfNeeded: index) &+ 0x51))
    }

    /// A seed for a named purpose ("dkdm.step", "eval.explicit", …) under run seed `base`.
    public static func seed(_ base: UInt64, purpose: String) -> UInt64 { seed(base, purpose, -1) }
}
