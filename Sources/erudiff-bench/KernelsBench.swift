import EruDiff
import Foundation
import Tensors

/// `erudiff-bench kernels [--threads N] [--rounds N]`: the sgemm ceiling and the throughput of Linear and
/// attention (forward + backward) at the default model's shapes, all measured in one run (interleaved
/// rounds, best time of each) so the ratios are fair on a shared machine.
enum KernelsBench: BenchCommand {
    static let name = "kernels"
    static let summary = "sgemm ceiling vs Linear and attention forward+backward (GFLOP/s, fraction)"

    static func run(arguments: [String]) throws {
        let f = try Flags(arguments, valued: ["threads", "rounds"])
        let threads = try f.positive("threads") ?? ProcessInfo.processInfo.activeProcessorCount, rounds = try f.positive("rounds") ?? 5
        BLAS.setThreads(threads)
        Parallel.threads = threads
        let load = (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?
            .split(separator: " ").prefix(3).joined(separator: " ") ?? "n/a"
        print("threads: \(threads) (OpenBLAS \(BLAS.threads), kernels \(Parallel.threads)); OpenBLAS core: "
              + BLAS.coreName + (BLAS.coreOverride.map { " (re-selected: \($0))" } ?? ""))
        print("load average before: \(load)")

        // Every measurement is a closure; all of them, the ceiling included, are sampled in interleaved
        // rounds and each keeps its best time, so a busy spell on the shared machine hits all alike.
        var items: [(label: String, flops: Double, body: () -> Void)] = []
        // The ceiling is the better of two big square GEMMs: the shorter one is likelier to find a quiet
        // moment on a shared machine, the longer one is the classic figure.
        for n in [2048, 1024] {
            items.append(("sgemm \(n)×\(n)×\(n)", 2 * Double(n * n) * Double(n), gemm(n)))
        }
        let ceilingItems = 2
        // Linear at the acceptance shape, then at the flow transformer's shapes (rows = batch·tokens).
        for (m, k, n) in [(2048, 128, 512), (16 * 96, 128, 128), (16 * 96, 128, 512), (32 * 80, 256, 256),
                          (32 * 80, 256, 1024), (32 * 80, 1024, 256)] {
            items.append(("Linear fwd+bwd M=\(m) K=\(k) N=\(n)", 6 * Double(m * k * n), linear(m: m, k: k, n: n, rank: 0)))
        }
        for (m, k, n, r) in [(2048, 128, 512, 8), (32 * 80, 256, 256, 16)] {
            // Counted work: base forward, dx, and the six LoRA GEMMs (frozen base: no dW).
            let flops = 4 * Double(m * k * n) + 6 * Double(m * r) * Double(k + n)
            items.append(("Linear+LoRA r\(r) fwd+bwd, W frozen, M=\(m) K=\(k) N=\(n)", flops,
                          linear(m: m, k: k, n: n, rank: r)))
        }
        // Attention: B batch, T = 64 image + 16–32 text tokens, H heads of Dh; 12·B·H·T²·Dh for the six
        // GEMMs of forward and backward (softmax not counted).
        for (b, t, h, dh) in [(8, 80, 4, 32), (16, 96, 4, 32), (32, 96, 4, 32), (32, 80, 8, 32), (64, 96, 4, 32)] {
            items.append(("Attention fwd+bwd B=\(b) T=\(t) H=\(h) Dh=\(dh)", 12 * Double(b * h * t * t * dh),
                          attention(batch: b, tokens: t, heads: h, headDim: dh)))
        }
        var wall = [Double](repeating: .infinity, count: items.count), cpu = wall
        for item in items { item.body() }  // warm-up
        for _ in 0..<rounds {
            for (i, item) in items.enumerated() {
                let t = Stopwatch.bestWallAndCPU(budget: 0.15, minReps: 1, item.body)
                wall[i] = min(wall[i], t.wall); cpu[i] = min(cpu[i], t.cpu)
            }
        }
        // Wall: GFLOP/s as the user sees it. CPU: GFLOP per CPU-second of the process (all threads) —
        // the same as wall on an idle machine, and still meaningful when other processes share the cores.
        print("wall GFLOP/s and fraction of the sgemm ceiling; cpu = GFLOP per process CPU-second, same ratio")
        let ceilWall = (0..<ceilingItems).map { items[$0].flops / wall[$0] * 1e-9 }.max()!
        let ceilCPU = (0..<ceilingItems).map { items[$0].flops / cpu[$0] * 1e-9 }.max()!
        print(String(format: "ceiling (best sgemm): wall %.1f GFLOP/s, cpu %.1f GFLOP per CPU-second", ceilWall, ceilCPU))
        for (i, item) in items.enumerated() {
            let gw = item.flops / wall[i] * 1e-9, gc = item.flops / cpu[i] * 1e-9
            print(String(format: "%-56@ wall %7.1f (%5.1f%%)  cpu %7.1f (%5.1f%%)  %9.3f ms", item.label as NSString,
                         gw, 100 * gw / ceilWall, gc, 100 * gc / ceilCPU, wall[i] * 1e3))
        }
        let after = (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?
            .split(separator: " ").prefix(3).joined(separator: " ") ?? "n/a"
        print("load average after: \(after)")
    }

    /// One large square sgemm (C = A·Bᵀ, the Linear forward's form).
    static func gemm(_ n: Int) -> () -> Void {
        var rng = RNG(seed: 1)
        let a = Tensor.randn([n, n], rng: &rng), b = Tensor.randn([n, n], rng: &rng), c = Tensor(zeros: [n, n])
        return {
            BLAS.sgemm(transA: false, transB: true, m: n, n: n, k: n, alpha: 1, a: a.data, lda: n, b: b.data, ldb: n,
                       beta: 0, c: c.data, ldc: n)
        }
    }

    /// One forward + backward (dx, dW, db; or, with a LoRA rank, dx, dA, dB with W frozen).
    static func linear(m: Int, k: Int, n: Int, rank: Int) -> () -> Void {
        var rng = RNG(seed: 2)
        let x = Tensor.randn([m, k], rng: &rng), w = Tensor.randn([n, k], std: 0.05, rng: &rng)
        let b = Tensor.randn([n], rng: &rng), y = Tensor(zeros: [m, n]), dy = Tensor.randn([m, n], rng: &rng)
        let dx = Tensor(zeros: [m, k]), dw = Tensor(zeros: [n, k]), db = Tensor(zeros: [n])
        let r = max(rank, 1)
        let a = Tensor.randn([r, k], rng: &rng), bb = Tensor.randn([n, r], rng: &rng), hid = Tensor(zeros: [m, r])
        let da = Tensor(zeros: [r, k]), dbb = Tensor(zeros: [n, r])
        let lora = rank > 0 ? Linear.LoRA(a: a.data, b: bb.data, rank: rank, scale: 1, hidden: hid.data) : nil
        return { [a, bb, hid] in
            withExtendedLifetime((a, bb, hid)) {}  // `lora` holds only their pointers
            Linear.forward(x: x.data, weight: w.data, bias: b.data, y: y.data, rows: m, inFeatures: k, outFeatures: n,
                           lora: lora)
            Linear.backward(dy: dy.data, x: x.data, weight: w.data, dx: dx.data,
                            dWeight: rank > 0 ? nil : dw.data, dBias: rank > 0 ? nil : db.data,
                            rows: m, inFeatures: k, outFeatures: n, lora: lora, dA: da.data, dB: dbb.data)
        }
    }

    /// One attention forward + backward (dq, dk, dv).
    static func attention(batch: Int, tokens: Int, heads: Int, headDim: Int) -> () -> Void {
        var rng = RNG(seed: 3)
        let shape = [batch, tokens, heads, headDim]
        let q = Tensor.randn(shape, rng: &rng), k = Tensor.randn(shape, rng: &rng), v = Tensor.randn(shape, rng: &rng)
        let dout = Tensor.randn(shape, rng: &rng), out = Tensor(zeros: shape)
        let probs = Tensor(zeros: [batch, heads, tokens, tokens]), scratch = Tensor(zeros: probs.shape)
        let dq = Tensor(zeros: shape), dk = Tensor(zeros: shape), dv = Tensor(zeros: shape)
        return {
            Attention.forward(q: q.data, k: k.data, v: v.data, mask: nil, out: out.data, probs: probs.data,
                              batch: batch, tokens: tokens, heads: heads, headDim: headDim)
            Attention.backward(dout: dout.data, q: q.data, k: k.data, v: v.data, probs: probs.data, dq: dq.data,
                               dk: dk.data, dv: dv.data, scratch: scratch.data, batch: batch, tokens: tokens,
                               heads: heads, headDim: headDim)
        }
    }
}
