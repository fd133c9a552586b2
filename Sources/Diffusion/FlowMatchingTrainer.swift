import Models
import Tensors

/// The flow-matching training step of every base weight (pretraining, DESIGN.md §4.1; adapters train
/// with the adapter step of DK-DM and NO-RL):
///   t ~ logit-normal(0, 1) (optionally shifted), ε ~ N(0, I), x_t = (1 − t)·x0 + t·ε, loss = mean (v(x_t, t, c) − (ε − x0))²
///   (v the network's output, or derived from it when it predicts the clean sample; `WeightedMSE`),
///   with each caption replaced by the unconditional encoding with probability `captionDropout`;
///   backward, optional gradient-norm clipping, AdamW (`AdamW.step(clipping:maxNorm:)`).
/// Text arrives already encoded (`TextConditioning`), so callers can cache encodings and the text
/// encoder need not run every step. Memory (workspace, gradients, moments) is allocated once.
public final class FlowMatchingTrainer {
    public struct Options: Sendable {
        public var learningRate: Float = 3e-4
        /// AdamW's, with its default betas and ε.
        public var weightDecay: Float = 0
        /// Clip the global gradient norm to this (nil: no clipping).
        public var maxGradNorm: Float? = 1
        public var captionDropout: Float = 0.1
        /// Spread of the logit-normal training times (centred on 0).
        public var timeStd: Float = 1
        /// Static shift applied to each drawn time, `t' = s·t / (1 + (s − 1)·t)` (SD3's shift of the
        /// training distribution; 1 = none). Above 1 it trains more at high noise, where the layout of
        /// a large flat region is decided.
        public var timeShift: Float = 1
        /// What the network's output stands for; the loss is in velocity space either way.
        public var prediction: PredictionTarget = .velocity
        public init() {}
    }

    /// What one step did.
    public struct StepResult: Sendable {
        public let loss: Float
        /// Global gradient norm before clipping.
        public let gradNorm: Float
    }

    public let model: FluxTransformer
    public var options: Options
    public let workspace: FluxWorkspace
    public let gradients: FluxWeights
    public let optimizer: AdamW
    public var rng: RNG

    private let xt, targetV, noise, dOut: Tensor
    private let states, pooled: Tensor

    /// A trainer for batches of up to `batch` samples with `positions` (text length and image tokens).
    public init(model: FluxTransformer, batch: Int, positions: FluxPositions, options: Options = Options(), seed: UInt64) throws {
        self.model = model
        self.options = options
        self.workspace = try FluxWorkspace(config: model.config, batch: batch, positions: positions, training: true)
        let c = model.config, g = FluxWeights.zeros(c)
        gradients = g
        var params: [AdamW.Parameter] = []
        if let wm = model.weights.matrices, let wv = model.weights.vectors {  // two contiguous ranges
            params = [AdamW.Parameter(wm, grad: g.matrices!, decays: true), AdamW.Parameter(wv, grad: g.vectors!, decays: false)]
        } else {
            for (p, gr) in zip(model.weights.tensors, g.tensors) {
                params.append(AdamW.Parameter(p.tensor, grad: gr.tensor, decays: p.tensor.shape.count > 1))
            }
        }
        optimizer = AdamW(parameters: params, lr: options.learningRate, weightDecay: options.weightDecay)
        rng = RNG(seed: seed)
        let n = positions.imageTokens, l = positions.textTokens
        xt = Tensor(zeros: [batch, n, c.inChannels])
        targetV = Tensor(zeros: [batch, n, c.outFeatures])
        noise = Tensor(zeros: [batch, n, c.inChannels])
        dOut = Tensor(zeros: [batch, n, c.outFeatures])
        states = Tensor(zeros: [batch, l, c.jointAttentionDim])
        pooled = Tensor(zeros: [batch, c.pooledProjectionDim])
    }

    /// One training time: logit-normal, then the static shift when `options.timeShift` is not 1.
    public static func trainingTime(_ rng: inout RNG, options: Options) -> Float {
        let t = FlowMatching.logitNormalTime(&rng, std: options.timeStd)
        guard options.timeShift != 1 else { return t }
        return Float(TimestepSchedule.apply(.fixed(options.timeShift), to: Double(t)))
    }

    /// One optimisation step on clean samples `x0` `[B, N, C]` with their captions' encodings `text`
    /// (B prompts) and the unconditional encoding (1 prompt, used for dropped captions).
    @discardableResult
    public func step(x0: Tensor, text: TextConditioning, unconditional: TextConditioning) throws -> StepResult {
        let c = model.config, b = text.count, n = workspace.positions.imageTokens
        let per = n * c.inChannels
        guard b > 0, b <= workspace.maxBatch, x0.count == b * per else {
            throw FluxError.invalidInput("x0 \(x0.shape) and \(b) captions for a trainer of batch \(workspace.maxBatch)")
        }
        guard c.inChannels == c.outFeatures else { throw FluxError.invalidInput("flow matching needs out = in channels") }
        guard unconditional.count == 1, unconditional.tokens == text.tokens, text.tokens == workspace.positions.textTokens else {
            throw FluxError.invalidInput("text encodings do not match the trainer's text length")
        }
        var times = [Float](repeating: 0, count: b)
        for i in 0..<b {
            times[i] = Self.trainingTime(&rng, options: options)
            rng.fillNormal(noise.data + i * per, count: per)
            FlowMatching.noisy(x0: x0.data + i * per, noise: noise.data + i * per, t: times[i], into: xt.data + i * per,
                               count: per)
            FlowMatching.velocity(x0: x0.data + i * per, noise: noise.data + i * per, into: targetV.data + i * per,
                                  count: per)
            let drop = rng.uniform() < options.captionDropout
            if drop { unconditional.copy(0, intoStates: states, pooled: pooled, row: i) }
            else { text.copy(i, intoStates: states, pooled: pooled, row: i) }
        }
        let view = { (t: Tensor, shape: [Int]) in Tensor(borrowing: t.data, shape: shape, owner: t) }
        let input = FluxInput(image: view(xt, [b, n, c.inChannels]),
                              text: view(states, [b, text.tokens, c.jointAttentionDim]),
                              pooled: view(pooled, [b, c.pooledProjectionDim]), timesteps: times,
                              guidance: c.guidanceEmbeds ? [Float](repeating: 1, count: b) : nil)
        let out = try model.forward(input, workspace: workspace, useAdapter: false)
        // The output is not needed by backward: converted in place (nothing to do for velocities).
        FlowMatching.velocities(fromOutput: out.data, prediction: options.prediction, xt: xt.data, times: times, perRow: per)
        var mse = WeightedMSE(width: per, groups: [.init(rows: b)])
        mse.add([.init(out.data, targetV.data)], first: 0, rows: b, gradient: dOut.data)
        FlowMatching.outputGradient(dOut.data, prediction: options.prediction, times: times, perRow: per)
        try model.backward(outputGradient: view(dOut, [b, n, c.outFeatures]), workspace: workspace, baseGradients: gradients)
        optimizer.lr = options.learningRate
        let norm = optimizer.step(clipping: [gradients.flat!], maxNorm: options.maxGradNorm)
        if norm.isFinite { model.weights.markChanged() }
        return StepResult(loss: mse.loss, gradNorm: norm)
    }
}
