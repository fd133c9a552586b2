import EruDiff
import Models
import RPCServer

/// The `encode` method's work: the prompts go through the text encoder in passes of
/// `FlowModel.encodePassSize`, one pass per unit. The encoder keeps scratch memory sized to its largest
/// pass for the daemon's lifetime, so a request of thousands of prompts encoded at once would leave the
/// daemon holding hundreds of MB; in passes it also shares the worker with other jobs and can be
/// cancelled between passes.
final class EncodeJob: Job {
    let title: String
    private let model: EngineModel
    private let prompts: [String]
    private var tokens: [JSON] = []
    private var pooled: [JSON] = []

    init(model: EngineModel, prompts: [String]) {
        self.model = model
        self.prompts = prompts
        title = "encode: \(prompts.count) prompt(s)"
    }

    func step(_ context: JobContext) throws -> JobStep {
        let start = tokens.count, end = min(prompts.count, start + FlowModel.encodePassSize)
        let e = try model.flow.textEncoding(Array(prompts[start..<end]))
        for b in 0..<e.count {
            tokens.append(.array(e.tokens.sequence(b).map { .int(Int64($0)) }))
            pooled.append(.array(e.pooled(b).map { .double(Double($0)) }))
        }
        guard tokens.count == prompts.count else {
            return .progress(fraction: Double(tokens.count) / Double(prompts.count),
                             message: "\(tokens.count) of \(prompts.count) prompts")
        }
        return .done(["tokens": .array(tokens), "pooled": .array(pooled),
                      "maxLength": .int(Int64(model.flow.textTokens))])
    }
}
