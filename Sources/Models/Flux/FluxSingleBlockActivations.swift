/// What the forward pass of one single-stream block keeps for its backward. J = B·(L+N) joint rows,
/// C width, H heads, M MLP width.
final class FluxSingleBlockActivations {
    let mod: UnsafeMutablePointer<Float>            // [B, 3C] shift, scale, gate
    let mean, rstd: UnsafeMutablePointer<Float>     // [J]
    let ln, h: UnsafeMutablePointer<Float>          // [J, C] normalised, modulated
    let q, k: UnsafeMutablePointer<Float>           // [J, C] before RMSNorm
    let rq, rk: UnsafeMutablePointer<Float>         // [J·H]
    let qj, kj, vj: UnsafeMutablePointer<Float>     // [J, C] attention inputs (q, k normalised and rotated)
    let probs: UnsafeMutablePointer<Float>          // [B, H, T, T]
    let o: UnsafeMutablePointer<Float>              // [J, C] attention output
    let mlp, act: UnsafeMutablePointer<Float>       // [J, M] proj_mlp output, after GELU
    let p: UnsafeMutablePointer<Float>              // [J, C] proj_out output
    let out: UnsafeMutablePointer<Float>            // [J, C] block output

    init(dims: FluxDims, arena: FluxArena) {
        let j = dims.jointRows, c = dims.c
        mod = arena.take(dims.b * 3 * c)
        mean = arena.take(j); rstd = arena.take(j)
        ln = arena.take(j * c); h = arena.take(j * c)
        q = arena.take(j * c); k = arena.take(j * c)
        rq = arena.take(j * dims.h); rk = arena.take(j * dims.h)
        qj = arena.take(j * c); kj = arena.take(j * c); vj = arena.take(j * c)
        probs = arena.take(dims.b * dims.h * dims.t * dims.t)
        o = arena.take(j * c)
        mlp = arena.take(j * dims.m); act = arena.take(j * dims.m)
        p = arena.take(j * c)
        out = arena.take(j * c)
    }
}
