import Tensors
import World

/// A curriculum over the world's geometry for pretraining: for the first `fixedSteps` steps every
/// training scene is large and centred (captions that state another size or position are not drawn),
/// then the share of such scenes falls linearly to zero over `rampSteps`, after which training sees the
/// world's own distribution (every size and position, each left unsaid half the time).
///
/// Why: the flow model learns which shape a caption names quickly when the shape always sits in one
/// place at one size, and slowly when it must also learn to place it anywhere. Learning the
/// text-to-shape path first and the geometry second fits the pretraining budget; the shipped model still
/// draws the full world (docs/experiments/2026-11-27-mini-base-model.md).
public struct GeometryCurriculum: Codable, Equatable, Sendable {
    /// Steps during which every scene is large and centred.
    public var fixedSteps: Int
    /// Steps over which the share of large, centred scenes then falls from 1 to 0.
    public var rampSteps: Int

    public init(fixedSteps: Int, rampSteps: Int) {
        self.fixedSteps = fixedSteps
        self.rampSteps = rampSteps
    }

    /// The size and position of the fixed scenes.
    public static let fixedSize = Size.large
    public static let fixedPosition = Position.center

    /// The probability that a training scene at step `step` (0-based) is drawn large and centred.
    public func fixedShare(at step: Int) -> Float {
        if step < fixedSteps { return 1 }
        guard rampSteps > 0 else { return 0 }
        return max(0, 1 - Float(step - fixedSteps) / Float(rampSteps))
    }

    /// Whether a caption stating `attributes` can be drawn large and centred.
    public static func admitsFixedGeometry(_ attributes: Attributes) -> Bool {
        let a = fixingGeometry(attributes)
        return a.size == fixedSize && a.position == fixedPosition
    }

    /// `attributes` with its unsaid size and position set to the fixed ones.
    public static func fixingGeometry(_ attributes: Attributes) -> Attributes {
        var a = attributes
        a.size = a.size ?? fixedSize
        a.position = a.position ?? fixedPosition
        return a
    }
}
