import Foundation

/// The learning rate of each step of a training run (0-based): a linear warm-up to `peak` over the
/// first `warmupSteps` steps, then the peak throughout, or a half cosine from the peak down to
/// `floorFraction`·peak, reached at step `floorStep` and held after it.
public struct LearningRateSchedule: Equatable, Sendable {
    public var peak: Float
    public var warmupSteps: Int
    /// The cosine's end as a fraction of the peak (nil: no decay).
    public var floorFraction: Float?
    public var floorStep: Int

    public init(peak: Float, warmupSteps: Int = 0, floorFraction: Float? = nil, floorStep: Int = 0) {
        self.peak = peak; self.warmupSteps = warmupSteps; self.floorFraction = floorFraction; self.floorStep = floorStep
    }

    public func rate(at s: Int) -> Float {
        if s < warmupSteps { return peak * Float(s + 1) / Float(warmupSteps) }
        guard let f = floorFraction else { return peak }
        let p = min(1, Float(s - warmupSteps) / Float(max(1, floorStep - warmupSteps)))
        return peak * (f + (1 - f) * 0.5 * (1 + cos(Float.pi * p)))
    }
}
