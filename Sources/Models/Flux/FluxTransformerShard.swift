import Tensors

extension FluxTransformer {
    /// The forward pass of one shard (its rows of the batch) into its activations.
    func forwardShard(_ input: FluxInput, _ ws: FluxActivations, adapter active: LoRAAdapter?,
                      packed: FluxPackedWeights? = nil) {
        let w = weights, b = input.batch
        precondition(b <= ws.maxBatch, "shard of \(ws.maxBatch) rows given \(b)")
        var p = FluxPass(ws: ws, adapter: active, batch: b)
        p.packed = packed
        let d = p.dims, c = d.c
        ws.lastBatch = b
        ws.lastAdapter = active
        ws.lastGuidance = input.guidance != nil
        let image: UnsafePointer<Float>, text: UnsafePointer<Float>, pooled: UnsafePointer<Float>
        if ws.training {  // keep the inputs for the embedders' weight gradients
            ws.inImage.update(from: input.image.data, count: d.imageRows * config.inChannels)
            ws.inText.update(from: input.text.data, count: d.textRows * config.jointAttentionDim)
            ws.inPooled.update(from: input.pooled.data, count: b * config.pooledProjectionDim)
            image = UnsafePointer(ws.inImage); text = UnsafePointer(ws.inText); pooled = UnsafePointer(ws.inPooled)
        } else {
            image = UnsafePointer(input.image.data); text = UnsafePointer(input.text.data)
            pooled = UnsafePointer(input.pooled.data)
        }
        FluxConditioning.forward(w, timesteps: input.timesteps, guidance: input.guidance, pooled: pooled, pass: p)
        p.linear(w.contextEmbedder, text, ws.c0, rows: d.textRows)
        p.linear(w.xEmbedder, image, ws.x0, rows: d.imageRows)
        var img: UnsafeMutablePointer<Float> = ws.x0, txt: UnsafeMutablePointer<Float> = ws.c0
        for (i, bw) in w.doubleBlocks.enumerated() {
            let act = ws.double(i)
            FluxDoubleBlock.forward(bw, act, img: img, txt: txt, pass: p)
            img = act.img.out; txt = act.txt.out
        }
        var final = img
        if !w.singleBlocks.isEmpty {
            TokenConcat.forward(a: txt, b: img, y: ws.jointIn, batch: b, tokensA: d.l, tokensB: d.n, channels: c)
            var x = ws.jointIn
            for (i, sw) in w.singleBlocks.enumerated() {
                let act = ws.single(i)
                FluxSingleBlock.forward(sw, act, x: x, pass: p)
                x = act.out
            }
            TokenSplit.forward(x: x, a: nil, b: ws.xf, batch: b, tokensA: d.l, tokensB: d.n, channels: c)
            final = ws.xf
        }
        ws.finalInput = final
        // norm_out (AdaLayerNormContinuous: scale first, then shift) and proj_out.
        p.linear(w.normOut, ws.siluTemb, ws.modOut, rows: b)
        LayerNorm.forward(x: final, weight: nil, bias: nil, y: ws.lnF, mean: ws.meanF, rstd: ws.rstdF,
                          rows: d.imageRows, channels: c, eps: 1e-6)
        Modulate.forward(x: ws.lnF, scale: ws.modOut, shift: ws.modOut + c, y: ws.hF, batch: b, tokens: d.n,
                         channels: c, modStride: 2 * c)
        p.linear(w.projOut, ws.hF, ws.output.data, rows: d.imageRows)
    }

    /// The backward pass of one shard, from its rows of the output gradient.
    func backwardShard(_ outputGradient: UnsafePointer<Float>, _ ws: FluxActivations, baseGradients: FluxWeights?,
                       adapterGradients: LoRAAdapter?, inputGradients: Bool) {
        let s = ws.scratch!, b = ws.lastBatch
        var p = FluxPass(ws: ws, adapter: ws.lastAdapter, batch: b)
        let d = p.dims, c = d.c, w = weights
        p.baseGrads = baseGradients
        p.loraGrads = adapterGradients
        p.conditioningGrads = baseGradients != nil || inputGradients
        let cg = p.conditioningGrads
        let bg = baseGradients
        zero(s.dSiluTemb, b * c)

        // Final layer.
        p.linearBackward(w.projOut, dy: outputGradient, x: ws.hF, dx: s.dH1, rows: d.imageRows, overwrite: true)
        if cg { zero(s.dmodImg, b * 2 * c) }
        zero(s.dLn1, d.imageRows * c)
        Modulate.backward(dy: s.dH1, x: ws.lnF, scale: ws.modOut, dx: s.dLn1, dScale: cg ? s.dmodImg : nil,
                          dShift: cg ? s.dmodImg + c : nil, batch: b, tokens: d.n, channels: c, modStride: 2 * c)
        zero(s.dImg, d.imageRows * c)
        LayerNorm.backward(dy: s.dLn1, x: ws.finalInput!, weight: nil, mean: ws.meanF, rstd: ws.rstdF, dx: s.dImg,
                           dWeight: nil, dBias: nil, rows: d.imageRows, channels: c)
        if cg { p.linearBackward(w.normOut, dy: s.dmodImg, x: ws.siluTemb, dx: s.dSiluTemb, rows: b) }

        // Single blocks, last first.
        if !w.singleBlocks.isEmpty {
            zero(s.dJoint, d.jointRows * c)
            TokenSplit.backward(da: nil, db: s.dImg, dx: s.dJoint, batch: b, tokensA: d.l, tokensB: d.n, channels: c)
            for i in w.singleBlocks.indices.reversed() {
                let x = i == 0 ? ws.jointIn : ws.single(i - 1).out
                FluxSingleBlock.backward(w.singleBlocks[i], ws.single(i), grads: bg?.singleBlocks[i], x: x, pass: p)
            }
            TokenSplit.forward(x: s.dJoint, a: s.dTxt, b: s.dImg, batch: b, tokensA: d.l, tokensB: d.n, channels: c)
        } else {
            zero(s.dTxt, d.textRows * c)
        }

        // Double blocks, last first.
        for i in w.doubleBlocks.indices.reversed() {
            let img = i == 0 ? ws.x0 : ws.double(i - 1).img.out
            let txt = i == 0 ? ws.c0 : ws.double(i - 1).txt.out
            FluxDoubleBlock.backward(w.doubleBlocks[i], ws.double(i), grads: bg?.doubleBlocks[i], img: img, txt: txt,
                                     pass: p)
        }

        // Embedders.
        let ig = inputGradients ? ws.inputGradients : nil
        if let ig {
            zero(ig.image.data, d.imageRows * config.inChannels)
            zero(ig.text.data, d.textRows * config.jointAttentionDim)
            zero(ig.pooled.data, b * config.pooledProjectionDim)
        }
        p.linearBackward(w.xEmbedder, dy: s.dImg, x: ws.inImage, dx: ig?.image.data, rows: d.imageRows)
        p.linearBackward(w.contextEmbedder, dy: s.dTxt, x: ws.inText, dx: ig?.text.data, rows: d.textRows)
        if cg { FluxConditioning.backward(w, pooled: ws.inPooled, dPooled: ig?.pooled.data, pass: p) }
    }
}
