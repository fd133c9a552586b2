import Models
import Tensors

/// Samples images from a flow transformer one step at a time: the caller drives the loop with
/// `next()` (one model evaluation and update per call) and may stop at any step — that is how progress
/// is reported and cancellation happens, with no special cases.
///
/// - Euler ODE or Flow-GRPO's SDE (`SamplerStep.sde`) over a `TimestepSchedule` (shift configurable).
/// - Classifier-free guidance with an unconditional input (the empty prompt's encoding), conditional
///   and unconditional rows in one batch: `v = v_c + (w − 1)·(v_c − v_u)`.
/// - Image i's initial noise and its SDE noise come only from `RNG(seed: seeds[i])`, so an image is
///   reproduced by its seed whatever else is in the batch: bit for bit with the same batch, and to float
///   rounding (~1e-6; OpenBLAS picks its GEMM kernels by matrix size) in a batch of another size.
public final class FlowSampler {
    public enum Method: Equatable, Sendable {
        case ode
        /// Flow-GRPO's SDE with noise level a (σ_t = a·√(t/(1−t))).
        case sde(noiseLevel: Float)
    }

    /// Where a run stands after a step.
    public struct Progress: Equatable, Sendable {
        /// Steps done (1 after the first call of `next()`).
        public let step: Int
        public let steps: Int
        /// The σ (time) the samples are at now.
        public let sigma: Float

        public init(step: Int, steps: Int, sigma: Float) {
            self.step = step; self.steps = steps; self.sigma = sigma
        }
    }

    public let model: FluxTransformer
    public let packing: FluxPacking
    public let schedule: TimestepSchedule
    public let method: Method
    public let guidance: Float?
    public let seeds: [UInt64]
    public let useAdapter: Bool
    /// What the model's output stands for (converted to a velocity before guidance).
    public let prediction: PredictionTarget
    /// The current samples `[n, N, C·p²]` (pure noise before the first step, the images after the last).
    public let tokens: Tensor
    /// Steps done so far.
    public private(set) var step = 0

    private let workspace: FluxWorkspace
    private let input: FluxInput
    private let velocity: Tensor
    private let noise: Tensor
    private var rngs: [RNG]

    /// Prepares a run for `prompts.count` images. `unconditional` (one entry, the empty prompt) is
    /// required when `guidance` is given. A `workspace` (inference, batch ≥ rows per step) may be
    /// passed to reuse memory across runs.
    public init(model: FluxTransformer, packing: FluxPacking, prompts: TextConditioning,
                unconditional: TextConditioning? = nil, guidance: Float? = nil, seeds: [UInt64], steps: Int,
                shift: TimestepSchedule.Shift = .fixed(1), method: Method = .ode, useAdapter: Bool = true,
                guidanceEmbedding: Float? = nil, prediction: PredictionTarget = .velocity,
                workspace: FluxWorkspace? = nil) throws {
        let n = prompts.count
        guard n > 0, seeds.count == n else {
            throw FluxError.invalidInput("\(n) prompts with \(seeds.count) seeds")
        }
        guard steps > 0 else { throw FluxError.invalidInput("steps must be positive, got \(steps)") }
        try packing.check(model.config)
        if guidance != nil {
            guard let u = unconditional, u.count == 1, u.tokens == prompts.tokens else {
                throw FluxError.invalidInput("guidance needs one unconditional encoding of \(prompts.tokens) tokens")
            }
        }
        if case let .sde(a) = method, !(a >= 0 && a.isFinite) {
            throw FluxError.invalidInput("SDE noise level must be ≥ 0, got \(a)")
        }
        let rows = guidance == nil ? n : 2 * n
        let ws: FluxWorkspace
        if let workspace {
            guard workspace.maxBatch >= rows, workspace.positions == packing.positions(textTokens: prompts.tokens),
                  workspace.config == model.config else {
                throw FluxError.invalidInput("the workspace does not fit \(rows) rows of this model and packing")
            }
            ws = workspace
        } else {
            ws = try FluxWorkspace(config: model.config, batch: rows, positions: packing.positions(textTokens: prompts.tokens),
                                   training: false)
        }
        let per = packing.tokens * packing.tokenChannels
        let states = Tensor(zeros: [rows, prompts.tokens, prompts.states.shape[2]])
        let pooled = Tensor(zeros: [rows, prompts.pooled.shape[1]])
        for i in 0..<n { prompts.copy(i, intoStates: states, pooled: pooled, row: i) }
        if guidance != nil { for i in 0..<n { unconditional!.copy(0, intoStates: states, pooled: pooled, row: n + i) } }
        let guidanceValues = model.config.guidanceEmbeds ? [Float](repeating: guidanceEmbedding ?? 1, count: rows) : nil
        self.input = FluxInput(image: Tensor(zeros: [rows, packing.tokens, packing.tokenChannels]), text: states,
                               pooled: pooled, timesteps: [Float](repeating: 1, count: rows), guidance: guidanceValues)
        self.model = model
        self.packing = packing
        self.schedule = TimestepSchedule(steps: steps, shift: shift)
        self.method = method
        self.guidance = guidance
        self.seeds = seeds
        self.useAdapter = useAdapter
        self.prediction = prediction
        self.workspace = ws
        self.tokens = Tensor(zeros: [n, packing.tokens, packing.tokenChannels])
        self.velocity = Tensor(zeros: [n * per])
        self.noise = Tensor(zeros: [n * per])
        self.rngs = seeds.map { RNG(seed: $0) }
        for i in 0..<n { rngs[i].fillNormal(tokens.data + i * per, count: per) }
    }

    /// Whether every step has been taken.
    public var isFinished: Bool { step >= schedule.steps }

    /// Takes one step; nil when the run was already finished.
    public func next() throws -> Progress? {
        guard !isFinished else { return nil }
        let n = seeds.count, per = packing.tokens * packing.tokenChannels
        let sigma = schedule.sigmas[step], sigmaNext = schedule.sigmas[step + 1]
        var inp = input
        inp.timesteps = [Float](repeating: sigma, count: inp.timesteps.count)
        inp.image.data.update(from: tokens.data, count: n * per)
        if guidance != nil { (inp.image.data + n * per).update(from: tokens.data, count: n * per) }
        let out = try model.forward(inp, workspace: workspace, useAdapter: useAdapter)
        // Conditional rows, then the unconditional ones: both at the current samples.
        for half in stride(from: 0, to: inp.timesteps.count, by: n) {
            FlowMatching.velocities(fromOutput: out.data + half * per, prediction: prediction, xt: tokens.data,
                                    times: repeatElement(sigma, count: n), perRow: per)
        }
        velocity.data.update(from: out.data, count: n * per)
        if let w = guidance { SamplerStep.guide(cond: velocity.data, uncond: out.data + n * per, scale: w, count: n * per) }
        switch method {
        case .ode:
            SamplerStep.euler(x: tokens.data, velocity: velocity.data, sigma: sigma, sigmaNext: sigmaNext, count: n * per)
        case let .sde(a):
            for i in 0..<n { rngs[i].fillNormal(noise.data + i * per, count: per) }
            let guardSigma = schedule.sigmas.count > 1 ? schedule.sigmas[1] : 0
            SamplerStep.sde(x: tokens.data, velocity: velocity.data, sigma: sigma, sigmaNext: sigmaNext,
                            sigmaGuard: guardSigma, noiseLevel: a, noise: noise.data, count: n * per)
        }
        step += 1
        return Progress(step: step, steps: schedule.steps, sigma: sigmaNext)
    }

    /// Runs the remaining steps.
    public func run() throws { while try next() != nil {} }

    /// The current samples as images `[n, H, W, C]` (values as the model made them, not clamped).
    public func images() -> Tensor { packing.unpack(tokens) }
}
