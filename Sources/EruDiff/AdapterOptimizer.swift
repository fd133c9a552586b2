import Models
import Tensors

/// The adapter step of DK-DM and NO-RL: the policy (the model with its adapter on) run over a step's
/// rows in passes whose gradients add up in the adapter's gradient buffer, then AdamW at the learning
/// rate of a schedule (`AdamW.step(clipping:maxNorm:)`); saved and restored with a run.
final class AdapterOptimizer {
    let model: FlowModel
    let adapter: LoRAAdapter
    let gradients: LoRAAdapter
    let adam: AdamW
    let schedule: LearningRateSchedule
    let maxGradNorm: Float?
    let rowsPerPass: Int
    private let workspace: FluxWorkspace
    private let velocityGradient: Tensor

    /// Trains the model's adapter (a new one of `lora`'s shape when it has none, or when `fresh`) on steps
    /// of up to `rows` rows.
    init(model: FlowModel, lora: LoRASettings, fresh: Bool, rows: Int, rowsPerPass: Int, schedule: LearningRateSchedule,
         weightDecay: Float, maxGradNorm: Float?) throws {
        self.model = model
        adapter = try lora.adapter(on: model, fresh: fresh)
        gradients = adapter.zerosLike()
        adam = AdamW(parameters: [AdamW.Parameter(adapter.flat, grad: gradients.flat, decays: true)], lr: schedule.peak,
                     weightDecay: weightDecay)
        self.schedule = schedule
        self.maxGradNorm = maxGradNorm
        self.rowsPerPass = rowsPerPass
        let pk = model.packing, passRows = min(rows, rowsPerPass)
        workspace = try FluxWorkspace(config: model.transformer.config, batch: passRows,
                                      positions: pk.positions(textTokens: model.textTokens), training: true)
        velocityGradient = Tensor(zeros: [passRows, pk.tokens, pk.tokenChannels])
    }

    /// The policy's velocities over `rows` rows, in passes of at most `rowsPerPass` (`input(first,
    /// count)`): `loss(velocities, first, gradient)` reads a pass's velocities and writes the loss's
    /// gradient with respect to them, which with `backward` is carried into `gradients`.
    func passes(rows: Int, backward: Bool = true, input: (Int, Int) -> FluxInput,
                loss: (Tensor, Int, UnsafeMutablePointer<Float>) throws -> Void) throws {
        var start = 0
        while start < rows {
            let n = min(rowsPerPass, rows - start), x = input(start, n)
            try loss(try model.velocity(x, workspace: workspace, useAdapter: true), start, velocityGradient.data)
            if backward {
                let d = velocityGradient.rowsView(0, n)
                model.outputGradient(fromVelocityGradient: d, times: x.timesteps[...])
                try model.transformer.backward(outputGradient: d, workspace: workspace, adapterGradients: gradients,
                                               inputGradients: LoRASettings.needsConditioningGradients(adapter))
            }
            start += n
        }
    }

    /// The update of step `s` from the accumulated gradients; returns their norm before clipping.
    @discardableResult
    func step(at s: Int) -> Float {
        adam.lr = schedule.rate(at: s)
        return adam.step(clipping: [gradients.flat], maxNorm: maxGradNorm)
    }

    /// The adapter's shape as saved with a run ("rank/alpha/modules"): a restore must find the same.
    private var layout: String { "\(adapter.rank)/\(adapter.alpha)/" + adapter.modules.joined(separator: ",") }

    func save(into a: StateArchive, prefix: String) {
        a.set(prefix + "adapter", adapter.flat)
        a.set(prefix + "adam_m", adam.m[0])
        a.set(prefix + "adam_v", adam.v[0])
        a.set(prefix + "adam_steps", string: String(adam.stepCount))
        a.set(prefix + "adapter_layout", string: layout)
    }

    /// The optimizer's options of a training method.
    static func specs<Root>(_ lr: WritableKeyPath<Root, Float>, _ decay: WritableKeyPath<Root, Float>,
                            _ clip: WritableKeyPath<Root, Float?>) -> [OptionSpec<Root>] {
        [.number("learningRate", lr, 0...10, "AdamW learning rate of the adapter."), .number("weightDecay", decay, 0...10, "AdamW weight decay."),
         .number("maxGradNorm", clip, 1e-9...1e9, "Global gradient-norm clip (null: none).")]
    }

    func restore(from a: StateArchive, prefix: String) throws {
        guard try a.string(prefix + "adapter_layout") == layout else {
            throw EruDiffError.badState(path: a.source, problem: "the saved adapter has another rank, alpha or targets")
        }
        try a.copy(prefix + "adapter", into: adapter.flat)
        try a.copy(prefix + "adam_m", into: adam.m[0])
        try a.copy(prefix + "adam_v", into: adam.v[0])
        adam.stepCount = try a.int(prefix + "adam_steps")
    }
}
