import Foundation
import Tensors

/// diffusers' `FluxTransformer2DModel` with an optional LoRA adapter: forward over a batch, and
/// backward to every parameter (or only the adapter's), the conditioning and the inputs.
///
/// Joint attention sees the tokens as [text, image]; the output is the velocity for the image tokens
/// `[B, N, patch²·out_channels]`. Activations live in a `FluxWorkspace` the caller owns.
public final class FluxTransformer {
    public let config: FluxConfig
    public let weights: FluxWeights
    /// The adapter applied when enabled (and when a forward call does not switch it off).
    public var adapter: LoRAAdapter?
    /// Packed copies of the weights for inference passes (`FluxPackedWeights`), made on first use.
    var packedCache: FluxPackedWeights?
    let packLock = NSLock()

    public init(weights: FluxWeights, adapter: LoRAAdapter? = nil) {
        self.config = weights.config
        self.weights = weights
        self.adapter = adapter
    }
}

extension FluxTransformer {
    /// Runs the model; returns a view of `workspace.output` `[B, N, outFeatures]`, valid until the
    /// workspace's next forward. `useAdapter: false` runs the base weights alone.
    @discardableResult
    public func forward(_ input: FluxInput, workspace ws: FluxWorkspace, useAdapter: Bool = true) throws -> Tensor {
        try validate(input, ws)
        let active = (useAdapter && adapter?.enabled == true) ? adapter : nil
        let packed = ws.training ? nil : packedWeights()
        let split = ws.split(input.batch)
        ws.lastSplit = split
        let outPer = ws.positions.imageTokens * config.outFeatures
        if split.count == 1 {
            forwardShard(input, ws.shards[0], adapter: active, packed: packed)
            if ws.output !== ws.shards[0].output {
                ws.output.data.update(from: ws.shards[0].output.data, count: input.batch * outPer)
            }
        } else {
            let parts = FluxTransformer.rows(of: input, split)
            FluxShardRunner.run(split.count) { i in forwardShard(parts[i], ws.shards[i], adapter: active, packed: packed) }
            var row = 0
            for (i, n) in split.enumerated() {
                (ws.output.data + row * outPer).update(from: ws.shards[i].output.data, count: n * outPer)
                row += n
            }
        }
        return Tensor(borrowing: ws.output.data, shape: [input.batch, ws.positions.imageTokens, config.outFeatures],
                      owner: ws.output)
    }

    /// Backward of the workspace's last forward, from `outputGradient` `[B, N, outFeatures]`.
    /// Accumulates into `baseGradients` (nil: base frozen) and `adapterGradients` (nil: adapter not
    /// trained; shaped like the adapter used in the forward). With `inputGradients`, writes (overwrites)
    /// `workspace.inputGradients` (image, text, pooled).
    public func backward(outputGradient: Tensor, workspace ws: FluxWorkspace, baseGradients: FluxWeights? = nil,
                         adapterGradients: LoRAAdapter? = nil, inputGradients: Bool = false) throws {
        guard ws.training else { throw FluxError.invalidInput("backward needs a training workspace") }
        let split = ws.lastSplit
        guard !split.isEmpty else { throw FluxError.invalidInput("backward before any forward") }
        let b = split.reduce(0, +), outPer = ws.positions.imageTokens * config.outFeatures
        guard outputGradient.count >= b * outPer else {
            throw FluxError.invalidInput("output gradient has \(outputGradient.count) values, need \(b * outPer)")
        }
        if let g = baseGradients, g.config != config {
            throw FluxError.invalidInput("base gradients are shaped for another config")
        }
        if let g = adapterGradients {
            guard let a = ws.shards[0].lastAdapter, a.modules == g.modules, a.rank == g.rank else {
                throw FluxError.invalidInput("adapter gradients do not match the adapter used in the forward pass")
            }
        }
        if split.count == 1 {
            backwardShard(outputGradient.data, ws.shards[0], baseGradients: baseGradients,
                          adapterGradients: adapterGradients, inputGradients: inputGradients)
            if inputGradients, ws.shards.count > 1 { copyInputGradients(ws, split) }
            return
        }
        // Extra shards accumulate into private zeroed buffers, summed into the caller's afterwards.
        let extra = split.count - 1
        var baseParts: [FluxWeights?] = [baseGradients], loraParts: [LoRAAdapter?] = [adapterGradients]
        if baseGradients != nil {
            while ws.shardBaseGrads.count < extra { ws.shardBaseGrads.append(FluxWeights.zeros(config)) }
            for g in ws.shardBaseGrads.prefix(extra) { g.zero(); baseParts.append(g) }
        } else {
            baseParts += [FluxWeights?](repeating: nil, count: extra)
        }
        if let ag = adapterGradients {
            if ws.shardAdapterGrads.first.map({ $0.modules != ag.modules || $0.rank != ag.rank }) ?? false {
                ws.shardAdapterGrads = []
            }
            while ws.shardAdapterGrads.count < extra { ws.shardAdapterGrads.append(ag.zerosLike()) }
            for g in ws.shardAdapterGrads.prefix(extra) { g.flat.zero(); loraParts.append(g) }
        } else {
            loraParts += [LoRAAdapter?](repeating: nil, count: extra)
        }
        var offsets: [Int] = [], row = 0
        for n in split { offsets.append(row); row += n }
        FluxShardRunner.run(split.count) { i in
            backwardShard(outputGradient.data + offsets[i] * outPer, ws.shards[i], baseGradients: baseParts[i],
                          adapterGradients: loraParts[i], inputGradients: inputGradients)
        }
        for i in 1..<split.count {
            if let dst = baseGradients, let src = baseParts[i] {
                if let df = dst.flat, let sf = src.flat {
                    Residual.forward(a: df.data, b: sf.data, y: df.data, count: df.count)
                } else {
                    for (d, s) in zip(dst.tensors, src.tensors) {
                        Residual.forward(a: d.tensor.data, b: s.tensor.data, y: d.tensor.data, count: d.tensor.count)
                    }
                }
            }
            if let dst = adapterGradients, let src = loraParts[i] {
                Residual.forward(a: dst.flat.data, b: src.flat.data, y: dst.flat.data, count: dst.flat.count)
            }
        }
        if inputGradients { copyInputGradients(ws, split) }
    }

    /// Gathers the shards' input gradients into the workspace's.
    private func copyInputGradients(_ ws: FluxWorkspace, _ split: [Int]) {
        guard let all = ws.inputGradients else { return }
        var row = 0
        for (i, n) in split.enumerated() {
            guard let part = ws.shards[i].inputGradients else { continue }
            for (dst, src) in [(all.image, part.image), (all.text, part.text), (all.pooled, part.pooled)] {
                let per = dst.count / ws.maxBatch
                (dst.data + row * per).update(from: src.data, count: n * per)
            }
            row += n
        }
    }

    /// The inputs cut into consecutive row ranges of the given sizes (views, no copy).
    static func rows(of input: FluxInput, _ split: [Int]) -> [FluxInput] {
        var parts: [FluxInput] = [], row = 0
        func view(_ t: Tensor, _ n: Int) -> Tensor {
            let per = t.count / input.batch
            return Tensor(borrowing: t.data + row * per, shape: [n] + Array(t.shape.dropFirst()), owner: t)
        }
        for n in split {
            parts.append(FluxInput(image: view(input.image, n), text: view(input.text, n), pooled: view(input.pooled, n),
                                   timesteps: Array(input.timesteps[row..<(row + n)]),
                                   guidance: input.guidance.map { Array($0[row..<(row + n)]) }))
            row += n
        }
        return parts
    }

    private func validate(_ input: FluxInput, _ ws: FluxWorkspace) throws {
        let b = input.batch, n = ws.positions.imageTokens, l = ws.positions.textTokens
        guard ws.config == config else { throw FluxError.invalidInput("workspace made for another config") }
        guard b > 0 && b <= ws.maxBatch else {
            throw FluxError.invalidInput("batch \(b) outside 1...\(ws.maxBatch) of the workspace")
        }
        func check(_ name: String, _ t: Tensor, _ need: Int, _ shape: String) throws {
            guard t.count == need else {
                throw FluxError.invalidInput("\(name) has shape \(t.shape), expected \(shape)")
            }
        }
        try check("image", input.image, b * n * config.inChannels, "[\(b), \(n), \(config.inChannels)]")
        try check("text", input.text, b * l * config.jointAttentionDim, "[\(b), \(l), \(config.jointAttentionDim)]")
        try check("pooled", input.pooled, b * config.pooledProjectionDim, "[\(b), \(config.pooledProjectionDim)]")
        if config.guidanceEmbeds {
            guard let g = input.guidance, g.count == b else {
                throw FluxError.invalidInput("this model embeds guidance: give one guidance value per sample")
            }
        }
        guard input.timesteps.allSatisfy({ $0.isFinite }) else { throw FluxError.invalidInput("non-finite timestep") }
    }
}
