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

    /// Parses "uniform", "logit-normal", "logit-normal:M:S" or "shifted:S".
    public init(parsing text: String) throws {
        let parts = text.split(separator: ":").map(String.init)
        func num(_ i: Int) throws -> Float {
            guard i < parts.count, let v = Float(parts[i]), v.isFinite else {
                throw EruDiffError.invalidArgument("time sampling '\(text)': expected uniform, logit-normal[:mean:std] or shifted:s")
            }
            return v
        }
        switch parts.first ?? "" {
        case "uniform": self = .uniform
        case "logit-normal": self = parts.count == 1 ? .logitNormal(mean: 0, std: 1) : .logitNormal(mean: try num(1), std: try num(2))
        case "shifted":
            let s = try num(1)
            guard s > 0 else { throw EruDiffError.invalidArgument("time sampling shift must be positive") }
            self = .shifted(s)
        default: throw EruDiffError.invalidArgument("time sampling '\(text)': expected uniform, logit-normal[:mean:std] or shifted:s")
        }
    }
}
