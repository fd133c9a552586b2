import Foundation

/// The σ (= t) grid of a sampling run, as diffusers' FLUX pipeline builds it: `steps` values
/// `linspace(1, 1/steps, steps)`, shifted, then a terminal 0 — `steps + 1` values from 1 down to 0.
///
/// Shift (`FlowMatchEulerDiscreteScheduler`): static `σ' = s·σ / (1 + (s − 1)·σ)` (s = 1 leaves σ
/// unchanged; s > 1 spends more steps at high noise), or FLUX's resolution-dependent dynamic form
/// `σ' = e^μ / (e^μ + 1/σ − 1)` with μ from the image token count (`mu(imageTokens:)`).
public struct TimestepSchedule: Equatable, Sendable {
    public enum Shift: Equatable, Sendable {
        /// σ' = s·σ / (1 + (s − 1)·σ).
        case fixed(Float)
        /// σ' = e^μ / (e^μ + (1/σ − 1)).
        case dynamic(mu: Float)
    }

    /// σ_0 = 1 (or its shift) … σ_{steps} = 0.
    public let sigmas: [Float]

    public init(steps: Int, shift: Shift = .fixed(1)) {
        precondition(steps > 0, "a schedule needs at least one step")
        var s: [Float] = []
        for i in 0..<steps {
            // numpy's linspace(1, 1/steps, steps), in double, stored as float (like the pipeline).
            let step = steps == 1 ? 0 : (1.0 / Double(steps) - 1.0) / Double(steps - 1)
            let sigma = i == steps - 1 ? 1.0 / Double(steps) : 1.0 + Double(i) * step
            s.append(Float(TimestepSchedule.apply(shift, to: sigma)))
        }
        s.append(0)
        sigmas = s
    }

    /// Number of steps (σ intervals).
    public var steps: Int { sigmas.count - 1 }

    /// The shifted value of σ.
    public static func apply(_ shift: Shift, to sigma: Double) -> Double {
        switch shift {
        case let .fixed(s):
            let s = Double(s)
            return s * sigma / (1 + (s - 1) * sigma)
        case let .dynamic(mu):
            let e = Foundation.exp(Double(mu))
            return e / (e + (1 / sigma - 1))
        }
    }

    /// FLUX's μ for a sequence of `imageTokens`: linear from 0.5 at 256 tokens to 1.15 at 4096.
    public static func mu(imageTokens: Int, baseTokens: Int = 256, maxTokens: Int = 4096,
                          baseShift: Float = 0.5, maxShift: Float = 1.15) -> Float {
        let m = (maxShift - baseShift) / Float(maxTokens - baseTokens)
        return Float(imageTokens) * m + (baseShift - m * Float(baseTokens))
    }
}
