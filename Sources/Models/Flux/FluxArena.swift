import Tensors

/// Allocates the float buffers of a workspace once and keeps them alive with it.
final class FluxArena {
    private(set) var tensors: [Tensor] = []
    private(set) var floats = 0

    /// A zero-filled buffer of `count` floats, 64-byte aligned, valid as long as the arena.
    func take(_ count: Int) -> UnsafeMutablePointer<Float> {
        let t = Tensor(zeros: [max(count, 1)])
        tensors.append(t)
        floats += count
        return t.data
    }

    var byteCount: Int { floats * MemoryLayout<Float>.size }
}

/// The sizes of one pass: batch `b`, text tokens `l`, image tokens `n`, joint `t = l + n`, width `c`,
/// heads `h` of `d` channels, MLP width `m`.
struct FluxDims {
    let b, l, n, c, h, d, m: Int
    var t: Int { l + n }
    var imageRows: Int { b * n }
    var textRows: Int { b * l }
    var jointRows: Int { b * t }
}
