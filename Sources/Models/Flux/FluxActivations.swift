import Tensors

/// The activation memory of one forward and backward pass over up to `maxBatch` samples, allocated
/// once: what a `FluxWorkspace` holds one of per parallel shard (see there). When `training`, every
/// block keeps its activations for backward; otherwise one set of buffers serves all blocks.
final class FluxActivations {
    let config: FluxConfig
    let maxBatch: Int
    let positions: FluxPositions
    let training: Bool
    let rope: FluxRope
    let dims: FluxDims  // at maxBatch
    let arena = FluxArena()

    // Inputs embedded, conditioning.
    let x0, c0: UnsafeMutablePointer<Float>          // [B·N, C], [B·L, C]
    let tsin, tHidden, tAct: UnsafeMutablePointer<Float>    // [B, 256], [B, C], [B, C]
    let gsin, gHidden, gAct: UnsafeMutablePointer<Float>
    let pHidden, pAct: UnsafeMutablePointer<Float>   // [B, C]
    let temb, siluTemb, part: UnsafeMutablePointer<Float>   // [B, C]
    // Blocks (one shared set each when not training).
    let doubles: [FluxDoubleBlockActivations]
    let singles: [FluxSingleBlockActivations]
    let jointIn: UnsafeMutablePointer<Float>         // [J, C] first single block's input
    // Final layer.
    let xf, modOut, meanF, rstdF, lnF, hF: UnsafeMutablePointer<Float>
    /// `[maxBatch, N, outFeatures]`: the last forward's result (first `batch` rows valid).
    let output: Tensor
    // Backward scratch.
    let scratch: FluxBackwardScratch?
    /// Gradients with respect to the inputs, written by a backward that asks for them.
    let inputGradients: FluxInputGradients?

    // Training copies of the inputs (the embedders' weight gradients need them) and a row of ones.
    let inImage, inText, inPooled: UnsafeMutablePointer<Float>
    private let onesBuffer: UnsafeMutablePointer<Float>

    // State of the last forward pass (what backward must replay).
    var finalInput: UnsafeMutablePointer<Float>?
    var lastBatch = 0
    var lastAdapter: LoRAAdapter?
    var lastGuidance = false
    private var loraRank = 0
    private let linearCount: Int
    private var loraHidden: [UnsafeMutablePointer<Float>?] = []
    private var loraArena = FluxArena()

    init(config: FluxConfig, batch: Int, positions: FluxPositions, training: Bool) throws {
        guard batch > 0 else { throw FluxError.invalidInput("workspace batch must be positive") }
        guard positions.imageTokens > 0 else { throw FluxError.invalidInput("no image tokens") }
        self.config = config
        self.maxBatch = batch
        self.positions = positions
        self.training = training
        self.linearCount = FluxWeights.linearLayout(config).count
        self.rope = try FluxRope(positions: positions, axesDims: config.axesDimsRope)
        let d = FluxDims(b: batch, l: positions.textTokens, n: positions.imageTokens, c: config.innerDim,
                         h: config.numAttentionHeads, d: config.attentionHeadDim, m: config.mlpDim)
        dims = d
        let a = arena, c = d.c, s = FluxConditioning.sinusoidDim
        x0 = a.take(d.imageRows * c); c0 = a.take(d.textRows * c)
        tsin = a.take(d.b * s); tHidden = a.take(d.b * c); tAct = a.take(d.b * c)
        gsin = a.take(d.b * s); gHidden = a.take(d.b * c); gAct = a.take(d.b * c)
        pHidden = a.take(d.b * c); pAct = a.take(d.b * c)
        temb = a.take(d.b * c); siluTemb = a.take(d.b * c); part = a.take(d.b * c)
        let nd = config.numLayers == 0 ? 0 : (training ? config.numLayers : 1)
        let ns = config.numSingleLayers == 0 ? 0 : (training ? config.numSingleLayers : 1)
        doubles = (0..<nd).map { _ in FluxDoubleBlockActivations(dims: d, arena: a) }
        singles = (0..<ns).map { _ in FluxSingleBlockActivations(dims: d, arena: a) }
        jointIn = a.take(d.jointRows * c)
        xf = a.take(d.imageRows * c); modOut = a.take(d.b * 2 * c)
        meanF = a.take(d.imageRows); rstdF = a.take(d.imageRows)
        lnF = a.take(d.imageRows * c); hF = a.take(d.imageRows * c)
        output = Tensor(zeros: [batch, d.n, config.outFeatures])
        scratch = training ? FluxBackwardScratch(dims: d, arena: a) : nil
        inImage = a.take(training ? d.imageRows * config.inChannels : 0)
        inText = a.take(training ? d.textRows * config.jointAttentionDim : 0)
        inPooled = a.take(training ? d.b * config.pooledProjectionDim : 0)
        onesBuffer = a.take(d.jointRows)
        onesBuffer.update(repeating: 1, count: d.jointRows)
        inputGradients = training ? FluxInputGradients(config: config, batch: batch, textTokens: d.l, imageTokens: d.n) : nil
    }

    /// At least `count` ones (column sums by GEMM).
    func ones(_ count: Int) -> UnsafePointer<Float> {
        precondition(count <= dims.jointRows)
        return UnsafePointer(onesBuffer)
    }

    /// Activations of double block `i` (the shared set when not training).
    func double(_ i: Int) -> FluxDoubleBlockActivations { doubles[training ? i : 0] }
    /// Activations of single block `i`.
    func single(_ i: Int) -> FluxSingleBlockActivations { singles[training ? i : 0] }

    /// The `[rows, rank]` buffer linking LoRA forward and backward of linear layer `id`
    /// (one per layer when training, one shared otherwise).
    func loraHiddenBuffer(linear id: Int, rank: Int) -> UnsafeMutablePointer<Float> {
        if rank != loraRank {
            loraArena = FluxArena()
            loraHidden = [UnsafeMutablePointer<Float>?](repeating: nil, count: linearCount)
            loraRank = rank
        }
        let key = training ? id : 0
        if let p = loraHidden[key] { return p }
        let p = loraArena.take(dims.jointRows * rank)
        loraHidden[key] = p
        return p
    }

    /// Bytes of activation memory held.
    var byteCount: Int { arena.byteCount + loraArena.byteCount + output.byteCount }
}

/// Gradient buffers of the backward pass, shared by all blocks (each block's backward finishes with
/// them before the next starts).
final class FluxBackwardScratch {
    let dImg, dTxt, dJoint: UnsafeMutablePointer<Float>      // running residual gradients
    let dF2, dA, dH2, dLn2, dVs, dq, dH1, dLn1: UnsafeMutablePointer<Float>  // [J, C]
    let dG1, dF1: UnsafeMutablePointer<Float>                // [J, M]
    let dOimg, dOtxt: UnsafeMutablePointer<Float>            // [B·N, C], [B·L, C]
    let dO, dQ, dK, dV: UnsafeMutablePointer<Float>          // [J, C] joint
    let attn: UnsafeMutablePointer<Float>                    // [B, H, T, T]
    let dmodImg, dmodTxt: UnsafeMutablePointer<Float>        // [B, 6C]
    let dSiluTemb, dTemb, dHid, dHid2: UnsafeMutablePointer<Float>   // [B, C]

    init(dims d: FluxDims, arena a: FluxArena) {
        let jc = d.jointRows * d.c, jm = d.jointRows * d.m
        dImg = a.take(d.imageRows * d.c); dTxt = a.take(d.textRows * d.c); dJoint = a.take(jc)
        dF2 = a.take(jc); dA = a.take(jc); dH2 = a.take(jc); dLn2 = a.take(jc)
        dVs = a.take(jc); dq = a.take(jc)
        dH1 = a.take(jc); dLn1 = a.take(jc)
        dG1 = a.take(jm); dF1 = a.take(jm)
        dOimg = a.take(d.imageRows * d.c); dOtxt = a.take(d.textRows * d.c)
        dO = a.take(jc); dQ = a.take(jc); dK = a.take(jc); dV = a.take(jc)
        attn = a.take(d.b * d.h * d.t * d.t)
        dmodImg = a.take(d.b * 6 * d.c); dmodTxt = a.take(d.b * 6 * d.c)
        dSiluTemb = a.take(d.b * d.c); dTemb = a.take(d.b * d.c); dHid = a.take(d.b * d.c); dHid2 = a.take(d.b * d.c)
    }
}
