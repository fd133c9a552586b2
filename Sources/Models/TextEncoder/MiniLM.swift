import Foundation
import Tensors

/// The BERT encoder of all-MiniLM-L6-v2: embeddings, then post-LayerNorm transformer layers with
/// self-attention and an exact (erf) GELU feed-forward, as transformers' `BertModel`.
///
/// Padding costs nothing: the real tokens of all prompts are packed into one matrix for the linear
/// layers, norms and activations, and attention runs per prompt over its own tokens only — the same
/// result as BERT's additive padding mask, whose masked keys get exactly zero weight. Inference only (the
/// text encoder is frozen). Working memory is allocated once and grown only when a call needs more than
/// any before it, so repeated calls allocate nothing but their results. Calls are serialised by a lock:
/// one instance may be shared between threads.
public final class MiniLM: @unchecked Sendable {
    public let config: MiniLMConfig
    public let weights: MiniLMWeights
    /// Each layer's six projections, packed once for few-row products (`PackedWeight`).
    private let packed: [[PackedWeight]]

    private let lock = NSLock()
    private var scratch = Scratch()
    /// First packed row of each prompt (reused between calls).
    private var starts: [Int] = []

    /// What one call works in, sized for `tokens` packed rows and `scores` attention probabilities.
    private struct Scratch {
        var tokens = 0, scores = 0
        var ids: UnsafeMutablePointer<Int>? = nil
        var x, q, k, v, context, projected: UnsafeMutablePointer<Float>?
        var hidden: UnsafeMutablePointer<Float>? = nil
        var probs: UnsafeMutablePointer<Float>? = nil
        var ones: UnsafeMutablePointer<Float>? = nil

        mutating func release() {
            for p in [x, q, k, v, context, projected, hidden, probs, ones] { p?.deallocate() }
            ids?.deallocate()
            self = Scratch()
        }
    }

    public init(config: MiniLMConfig, weights: MiniLMWeights) {
        self.config = config
        self.weights = weights
        let projections = weights.layers.map { l in
            [l.query, l.key, l.value, l.attentionOutput, l.intermediate, l.output]
        }
        packed = projections.map { $0.map { PackedWeight($0) } }
        // The packed copies are what forward reads; the mapped originals need not stay resident.
        if PackedWeight.isAvailable { for t in projections.joined() { t.releaseMappedPages() } }
    }

    deinit { scratch.release() }

    /// Runs the encoder on `batch`. Returns the last hidden states `[count, length, hidden]`, with the
    /// rows of padding positions set to zero (they carry no meaning), and the attention-masked mean of
    /// the real positions `[count, hidden]` (sentence-transformers' mean pooling, before normalising).
    public func forward(_ batch: TokenBatch) throws -> (states: Tensor, meanPooled: Tensor) {
        let b = batch.count, t = batch.length, d = config.hiddenSize
        guard t <= config.maxPositions else {
            throw TextEncoderError.invalidArgument("\(t) tokens exceed the \(config.maxPositions) positions of the model")
        }
        for id in batch.ids where id < 0 || Int(id) >= config.vocabularySize {
            throw TextEncoderError.invalidArgument("token id \(id) outside the vocabulary of \(config.vocabularySize)")
        }
        let states = Tensor(zeros: [b, t, d])
        let pooled = Tensor(zeros: [b, d])
        let n = batch.lengths.reduce(0, +), longest = batch.lengths.max() ?? 0
        if n == 0 { return (states, pooled) }

        lock.lock()
        defer { lock.unlock() }
        ensureCapacity(tokens: n, scores: config.heads * longest * longest)
        let s = scratch
        starts.removeAll(keepingCapacity: true)
        var row = 0
        for (i, len) in batch.lengths.enumerated() {
            starts.append(row)
            for j in 0..<len { s.ids![row + j] = Int(batch.ids[i * t + j]) }
            row += len
        }

        embed(ids: s.ids!, rows: n, lengths: batch.lengths, out: s.x!)
        for (layer, p) in zip(weights.layers, packed) {
            encoderLayer(layer, packed: p, x: s.x!, rows: n, lengths: batch.lengths, s: s)
        }

        // Unpack the rows, and mean-pool them: pooled[i] = (1/n_i) · Σ_j x[i, j].
        for (i, len) in batch.lengths.enumerated() where len > 0 {
            let src = s.x! + starts[i] * d
            (states.data + i * t * d).update(from: src, count: len * d)
            BLAS.sgemm(transA: false, transB: false, m: 1, n: d, k: len, alpha: 1 / Float(len),
                       a: s.ones!, lda: len, b: src, ldb: d, beta: 0, c: pooled.data + i * d, ldc: d)
        }
        return (states, pooled)
    }

    /// x = LayerNorm(word[id] + tokenType[0] + position[j]) for the packed rows.
    private func embed(ids: UnsafePointer<Int>, rows n: Int, lengths: [Int], out x: UnsafeMutablePointer<Float>) {
        let d = config.hiddenSize
        Embedding.forward(ids: ids, table: weights.wordEmbeddings.data, out: x, count: n,
                          vocabulary: config.vocabularySize, dim: d)
        let type0 = weights.tokenTypeEmbeddings.data
        for i in 0..<n { Residual.forward(a: x + i * d, b: type0, y: x + i * d, count: d) }
        for (i, len) in lengths.enumerated() where len > 0 {
            let xi = x + starts[i] * d
            Residual.forward(a: xi, b: weights.positionEmbeddings.data, y: xi, count: len * d)
        }
        LayerNorm.forward(x: x, weight: weights.embeddingNormWeight.data, bias: weights.embeddingNormBias.data,
                          y: x, mean: nil, rstd: nil, rows: n, channels: d, eps: config.layerNormEps)
    }

    /// One post-LN BERT layer, in place on the packed rows x `[n, hidden]`.
    private func encoderLayer(_ w: MiniLMWeights.Layer, packed p: [PackedWeight], x: UnsafeMutablePointer<Float>, rows n: Int,
                              lengths: [Int], s: Scratch) {
        let d = config.hiddenSize, f = config.intermediateSize, eps = config.layerNormEps
        p[0].forward(x: x, bias: w.queryBias.data, y: s.q!, rows: n)
        p[1].forward(x: x, bias: w.keyBias.data, y: s.k!, rows: n)
        p[2].forward(x: x, bias: w.valueBias.data, y: s.v!, rows: n)
        for (i, len) in lengths.enumerated() where len > 0 {
            let off = starts[i] * d
            Attention.forward(q: s.q! + off, k: s.k! + off, v: s.v! + off, mask: nil, out: s.context! + off,
                              probs: s.probs!, batch: 1, tokens: len, heads: config.heads, headDim: config.headDim)
        }
        p[3].forward(x: s.context!, bias: w.attentionOutputBias.data, y: s.projected!, rows: n)
        Residual.forward(a: s.projected!, b: x, y: s.projected!, count: n * d)
        LayerNorm.forward(x: s.projected!, weight: w.attentionNormWeight.data, bias: w.attentionNormBias.data,
                          y: x, mean: nil, rstd: nil, rows: n, channels: d, eps: eps)
        p[4].forward(x: x, bias: w.intermediateBias.data, y: s.hidden!, rows: n)
        GELU.forward(x: s.hidden!, y: s.hidden!, count: n * f, approximation: .erf)
        p[5].forward(x: s.hidden!, bias: w.outputBias.data, y: s.projected!, rows: n)
        Residual.forward(a: s.projected!, b: x, y: s.projected!, count: n * d)
        LayerNorm.forward(x: s.projected!, weight: w.outputNormWeight.data, bias: w.outputNormBias.data,
                          y: x, mean: nil, rstd: nil, rows: n, channels: d, eps: eps)
    }

    /// Grows the working memory to hold `tokens` rows and `scores` attention probabilities.
    private func ensureCapacity(tokens: Int, scores: Int) {
        if tokens <= scratch.tokens && scores <= scratch.scores { return }
        let nt = max(tokens, scratch.tokens), ns = max(scores, scratch.scores)
        scratch.release()
        let d = config.hiddenSize, f = config.intermediateSize
        func floats(_ count: Int) -> UnsafeMutablePointer<Float> {
            let p = UnsafeMutablePointer<Float>.allocate(capacity: count)
            p.initialize(repeating: 0, count: count)
            return p
        }
        scratch.tokens = nt
        scratch.scores = ns
        scratch.ids = UnsafeMutablePointer<Int>.allocate(capacity: nt)
        scratch.ids!.initialize(repeating: 0, count: nt)
        scratch.x = floats(nt * d)
        scratch.q = floats(nt * d)
        scratch.k = floats(nt * d)
        scratch.v = floats(nt * d)
        scratch.context = floats(nt * d)
        scratch.projected = floats(nt * d)
        scratch.hidden = floats(nt * f)
        scratch.probs = floats(ns)
        scratch.ones = floats(nt)
        scratch.ones!.update(repeating: 1, count: nt)
    }

    /// Bytes of working memory currently held (grows with the largest batch seen).
    public var scratchBytes: Int {
        lock.lock(); defer { lock.unlock() }
        return scratch.tokens * (MemoryLayout<Int>.size + 4 * (1 + 6 * config.hiddenSize + config.intermediateSize))
            + scratch.scores * 4
    }
}
