import EruDiff
import Models
import Foundation

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
            return ClosureJob(title: "encode: \(prompts.count) prompt(s)") { _ in
                let e: TextEncoding
                do { e = try model.flow.textEncoding(prompts) } catch { throw Engine.rpcError(error) }
                return .done([
                    "tokens": .array((0..<e.count).map { b in .array(e.tokens.sequence(b).map { .int(Int64($0)) }) }),
                    "pooled": .array((0..<e.count).map { b in .array(e.pooled(b).map { .double(Double($0)) }) }),
                    "maxLength": .int(Int64(model.flow.textTokens)),
                ])
            }
        })
    }
}
