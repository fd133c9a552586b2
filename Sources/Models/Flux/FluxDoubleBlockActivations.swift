/// What the forward pass of one double-stream block keeps for its backward, per stream
/// (image `img`, text `txt`) and for the joint attention. Shapes use B batch, R rows of the stream
/// (B·N or B·L), J = B·(L+N) joint rows, C width, H heads, M MLP width.
final class FluxDoubleBlockActivations {
    /// One stream's buffers.
    struct Stream {
        let rows: Int
        let mod: UnsafeMutablePointer<Float>        // [B, 6C] adaLN projection: shift, scale, gate (msa), shift, scale, gate (mlp)
        let mean1, rstd1: UnsafeMutablePointer<Float>   // [R]
        let ln1, h1: UnsafeMutablePointer<Float>     // [R, C] normalised, modulated (input of q/k/v)
        let q, k, v: UnsafeMutablePointer<Float>     // [R, C] projections (q, k before RMSNorm)
        let rq, rk: UnsafeMutablePointer<Float>      // [R·H] RMSNorm rstd
        let o: UnsafeMutablePointer<Float>           // [R, C] this stream's part of the attention output
        let a: UnsafeMutablePointer<Float>           // [R, C] attention out-projection
        let x1: UnsafeMutablePointer<Float>          // [R, C] after the attention residual
        let mean2, rstd2: UnsafeMutablePointer<Float>
        let ln2, h2: UnsafeMutablePointer<Float>     // [R, C]
        let f1, g1: UnsafeMutablePointer<Float>      // [R, M] MLP hidden before / after GELU
        let f2: UnsafeMutablePointer<Float>          // [R, C] MLP output
        let out: UnsafeMutablePointer<Float>         // [R, C] block output (next block's input)

        init(rows r: Int, dims: FluxDims, arena: FluxArena) {
            let c = dims.c
            rows = r
            mod = arena.take(dims.b * 6 * c)
            mean1 = arena.take(r); rstd1 = arena.take(r)
            ln1 = arena.take(r * c); h1 = arena.take(r * c)
            q = arena.take(r * c); k = arena.take(r * c); v = arena.take(r * c)
            rq = arena.take(r * dims.h); rk = arena.take(r * dims.h)
            o = arena.take(r * c); a = arena.take(r * c); x1 = arena.take(r * c)
            mean2 = arena.take(r); rstd2 = arena.take(r)
            ln2 = arena.take(r * c); h2 = arena.take(r * c)
            f1 = arena.take(r * dims.m); g1 = arena.take(r * dims.m)
            f2 = arena.take(r * c); out = arena.take(r * c)
        }
    }

    let img: Stream
    let txt: Stream
    let qj, kj, vj: UnsafeMutablePointer<Float>     // [J, C] joint q, k (normalised, rotated), v
    let probs: UnsafeMutablePointer<Float>          // [B, H, T, T]
    let oj: UnsafeMutablePointer<Float>             // [J, C] attention output

    init(dims: FluxDims, arena: FluxArena) {
        img = Stream(rows: dims.imageRows, dims: dims, arena: arena)
        txt = Stream(rows: dims.textRows, dims: dims, arena: arena)
        let j = dims.jointRows * dims.c
        qj = arena.take(j); kj = arena.take(j); vj = arena.take(j)
        probs = arena.take(dims.b * dims.h * dims.t * dims.t)
        oj = arena.take(j)
    }
}
