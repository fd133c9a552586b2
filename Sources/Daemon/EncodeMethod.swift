import RPCServer

extension MethodTable {
    /// `encode`: the text encoder's view of prompts at the model's context length — WordPiece token
    /// ids (`[CLS] … [SEP]`, no padding) and the pooled sentence vectors the transformer receives —
    /// for notebooks studying how implicit and explicit prompts are organised.
    func registerEncode(_ engine: Engine) {
        register("encode", .job { _, params in
            let model = try engine.model(params)
            let prompts = try params.stringArray("prompts")
            guard prompts.count <= 4096 else {
                throw RPCError.invalidParams("\"prompts\" must hold at most 4096 prompts, got \(prompts.count)")
            }
            return EncodeJob(model: model, prompts: prompts)
        })
    }
}
