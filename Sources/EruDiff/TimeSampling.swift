import Diffusion
import Foundation
import Tensors

/// How a training step draws its flow time t ∈ (0, 1).
public enum TimeSampling: Codable, Equatable, Sendable {
    /// t ~ U(0, 1).
    case uniform
    /// t = sigmoid(m + s·z), z ~ N(0, 1) (SD3's choice, pretraining's).
    case logitNormal(mean: Float, std: Float)
    /// u ~ U(0, 1) shifted towards noise: t = s·u / (1 + (s − 1)·u) (s > 1 spends more steps at high t).
    case shifted(Float)

    /// One draw.
    public func draw(_ rng: inout RNG) -> Float {
        switch self {
        case .uniform:
            return min(max(rng.uniform(), 1e-4), 1 - 1e-4)
        case let .logitNormal(m, s):
            return FlowMatching.logitNormalTime(&rng, mean: m, std: s)
        case let .shifted(s):
            let u = min(max(rng.uniform(), 1e-4), 1 - 1e-4)
            return s * u / (1 + (s - 1) * u)
        }
    }

    /// Parses `text`'s form: "uniform", "logit-normal", "logit-normal:M:S" or "shifted:S" (S, STD > 0).
    public init?(text: String) {
        let p = text.split(separator: ":", omittingEmptySubsequences: false), n = p.dropFirst().compactMap { Float($0) }.filter(\.isFinite)
        switch (p[0], n.count, p.count) {
        case ("uniform", 0, 1): self = .uniform
        case ("logit-normal", 0, 1): self = .logitNormal(mean: 0, std: 1)
        case ("logit-normal", 2, 3) where n[1] > 0: self = .logitNormal(mean: n[0], std: n[1])
        case ("shifted", 1, 2) where n[0] > 0: self = .shifted(n[0])
        default: return nil
        }
    }

    public var text: String {
        switch self {
        case .uniform: return "uniform"
        case let .logitNormal(m, s): return m == 0 && s == 1 ? "logit-normal" : "logit-normal:\(m):\(s)"
        case let .shifted(s): return "shifted:" + (s == s.rounded() && abs(s) < 1e9 ? String(Int(s)) : "\(s)")
        }
    }

    /// The `timeSampling` option of a training procedure.
    static func spec<Root>(_ kp: WritableKeyPath<Root, TimeSampling>) -> OptionSpec<Root> {
        OptionSpec("timeSampling", .text, "Training times: \"uniform\", \"logit-normal\", \"logit-normal:MEAN:STD\" or \"shifted:S\" "
                   + "(u ~ U(0, 1), t = S·u / (1 + (S − 1)·u): S > 1 spends more steps near noise).",
                   get: { .string($0[keyPath: kp].text) },
                   set: { o, v in
                       guard let t = TimeSampling(text: v.string!) else { throw OptionError(#""uniform", "logit-normal", "logit-normal:MEAN:STD" or "shifted:S" (S, STD > 0)"#) }
                       o[keyPath: kp] = t
                   })
    }
}
