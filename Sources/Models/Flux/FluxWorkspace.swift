import Foundation
import Tensors

/// The activation memory of a model's forward and backward passes, allocated once and reused across
/// steps, for up to `maxBatch` samples of one text length and one set of image positions.
///
/// A `training` workspace keeps every block's activations for `FluxTransformer.backward`; an inference
/// workspace keeps none (far smaller). Each forward writes only its own workspace, so a no-grad forward
/// in another workspace (the frozen reference model: same weights, adapter off) may run between a
/// training forward and its backward.
///
/// On several cores the batch is cut into `shards` (one per core, at most one per sample), each run on
/// its own thread from start to end with single-threaded kernels: a handful of synchronisations per
/// pass instead of thousands, which is what makes small-matrix work scale on a shared 2-core machine.
/// While sharded passes run, `BLAS` and `Parallel` are set to one thread (and restored after), so
/// kernels called from other threads at that moment run single-threaded too.
public final class FluxWorkspace {
    public let config: FluxConfig
    public let maxBatch: Int
    public let positions: FluxPositions
    public let training: Bool
    let shards: [FluxActivations]
    /// `[maxBatch, N, outFeatures]`: the last forward's result (first `batch` rows valid).
    public let output: Tensor
    /// Gradients with respect to the inputs, written by a backward that asks for them (training only).
    public let inputGradients: FluxInputGradients?
    /// Per extra shard: private gradient buffers summed into the caller's after a sharded backward.
    var shardBaseGrads: [FluxWeights] = []
    var shardAdapterGrads: [LoRAAdapter] = []
    /// Rows each shard took in the last forward.
    var lastSplit: [Int] = []

    /// A workspace for up to `batch` samples of `positions.textTokens` text and `positions.imageTokens`
    /// image tokens. `shards` (default: one per `Parallel.threads`, at most `batch`) sets how many
    /// threads share a batch.
    public init(config: FluxConfig, batch: Int, positions: FluxPositions, training: Bool, shards: Int?) throws {
        guard batch > 0 else { throw FluxError.invalidInput("workspace batch must be positive") }
        let n = max(1, min(shards ?? Parallel.threads, batch))
        self.config = config
        self.maxBatch = batch
        self.positions = positions
        self.training = training
        var list: [FluxActivations] = []
        for i in 0..<n {
            let rows = batch / n + (i < batch % n ? 1 : 0)
            list.append(try FluxActivations(config: config, batch: rows, positions: positions, training: training))
        }
        self.shards = list
        if n == 1 {
            output = list[0].output
            inputGradients = list[0].inputGradients
        } else {
            output = Tensor(zeros: [batch, positions.imageTokens, config.outFeatures])
            inputGradients = training ? FluxInputGradients(config: config, batch: batch, textTokens: positions.textTokens,
                                                           imageTokens: positions.imageTokens) : nil
        }
    }

    /// A workspace with the default number of shards.
    public convenience init(config: FluxConfig, batch: Int, positions: FluxPositions, training: Bool) throws {
        try self.init(config: config, batch: batch, positions: positions, training: training, shards: nil)
    }

    /// How a batch of `b` rows is cut: as evenly as possible over the shards, but never cut when
    /// there is one row (a lone sample uses every thread inside its kernels instead).
    func split(_ b: Int) -> [Int] {
        if b == 1 { return [1] }
        let n = min(shards.count, b)
        return (0..<n).map { b / n + ($0 < b % n ? 1 : 0) }
    }

    /// Bytes of activation memory held.
    public var byteCount: Int { shards.reduce(0) { $0 + $1.byteCount } + (shards.count > 1 ? output.byteCount : 0) }
}

/// Runs the shards of a pass on their own threads with single-threaded kernels.
enum FluxShardRunner {
    static let lock = NSLock()

    /// `body(i)` for i in 0..<count, concurrently when count > 1.
    static func run(_ count: Int, _ body: (Int) -> Void) {
        if count == 1 { body(0); return }
        lock.lock()
        let blas = BLAS.threads, par = Parallel.threads
        BLAS.setThreads(1)
        Parallel.threads = 1
        WorkerPool.run(count, threads: count, body)
        BLAS.setThreads(blas)
        Parallel.threads = par
        lock.unlock()
    }
}
