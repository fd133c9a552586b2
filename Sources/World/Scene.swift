import Tensors

/// One concrete picture of the world: every attribute decided, plus where exactly the object sits and
/// how big it is. A caption names a *set* of scenes; `sample` draws one of them, so the same caption
/// gives many right images (what NO-RL needs: a group of samples that differ).
///
/// Layout on the 32×32 canvas (pixel units, y down, centre at (16, 16)): the object's extent (longer
/// side of its bounding box) is 16 px when small and 22 px when large, times a uniform factor in
/// [0.9, 1.1]; sizes never overlap (≤ 17.6 vs ≥ 19.8, read back at 18.8). Small is no smaller: at 14 px a
/// star's arms are 2 px wide, half a 4×4 patch, and the model drew small shapes far worse than large
/// ones (docs/experiments/2026-12-07-code-comments.md).
/// Left/right/top/bottom move the box centre 7 px (small) or 5 px (large) off centre, less if the box
/// would leave the canvas, minus up to 0.75 px, with ±1.5 px across; the centre position jitters
/// ±1.25 px on both axes. Offsets of at least 2.5 px read as a side position.
public struct Scene: Hashable, Sendable {
    public var shape: Shape
    public var color: PaletteColor
    public var background: PaletteColor
    public var size: Size
    public var position: Position
    /// Centre of the object's bounding box, in pixels.
    public var centerX: Float
    public var centerY: Float
    /// Length of the longer side of the object's bounding box, in pixels.
    public var extent: Float

    /// Canvas side in pixels.
    public static let canvas = 32
    /// Extent of a small and of a large object before jitter.
    public static func nominalExtent(_ size: Size) -> Float { size == .small ? 16 : 22 }
    /// Relative size jitter (uniform ±).
    public static let sizeJitter: Float = 0.1
    /// Extent at which the verifier switches from small to large.
    public static let sizeThreshold: Float = 18.8
    /// Off-centre distance (pixels, along the larger axis) from which a position reads as a side.
    public static let positionThreshold: Float = 2.5

    static let sideOffset: [Size: Float] = [.small: 7, .large: 5]
    static let sideInward: Float = 0.75
    static let acrossJitter: Float = 1.5
    static let centerJitter: Float = 1.25
    static let margin: Float = 0.25

    public init(shape: Shape, color: PaletteColor, background: PaletteColor, size: Size, position: Position,
                centerX: Float, centerY: Float, extent: Float) {
        self.shape = shape; self.color = color; self.background = background
        self.size = size; self.position = position
        self.centerX = centerX; self.centerY = centerY; self.extent = extent
    }

    /// Every attribute of the scene.
    public var attributes: Attributes {
        Attributes(shape: shape, color: color, background: background, size: size, position: position)
    }

    /// A random scene that agrees with `attributes`: what they leave unsaid is drawn uniformly (shape,
    /// colour, size, position; a background different from the object's colour), and the exact centre
    /// and extent are jittered. If the attributes give the same colour to object and background, the
    /// background is redrawn: the object must always be visible.
    public static func sample(_ attributes: Attributes, rng: inout RNG) -> Scene {
        let shape = attributes.shape ?? Shape.allCases[rng.int(below: Shape.allCases.count)]
        let colors = PaletteColor.allCases
        let color: PaletteColor
        if let c = attributes.color {
            color = c
        } else {
            let allowed = colors.filter { $0 != attributes.background }
            color = allowed[rng.int(below: allowed.count)]
        }
        let background: PaletteColor
        if let b = attributes.background, b != color {
            background = b
        } else {
            let others = colors.filter { $0 != color }
            background = others[rng.int(below: others.count)]
        }
        let size = attributes.size ?? Size.allCases[rng.int(below: Size.allCases.count)]
        let position = attributes.position ?? Position.allCases[rng.int(below: Position.allCases.count)]

        let extent = nominalExtent(size) * (1 + sizeJitter * (2 * rng.uniform() - 1))
        let t = ShapeTemplate.of(shape)
        let half = Float(canvas) / 2
        // How far the box centre may move from the canvas centre on each axis and stay inside.
        let roomX = half - t.width * extent / 2 - margin
        let roomY = half - t.height * extent / 2 - margin
        func jitter(_ j: Float, _ room: Float) -> Float {
            min(max(j * (2 * rng.uniform() - 1), -room), room)
        }
        func side(_ room: Float) -> Float { min(sideOffset[size]!, room) - sideInward * rng.uniform() }
        var dx: Float = 0, dy: Float = 0
        switch position {
        case .center: dx = jitter(centerJitter, roomX); dy = jitter(centerJitter, roomY)
        case .left: dx = -side(roomX); dy = jitter(acrossJitter, roomY)
        case .right: dx = side(roomX); dy = jitter(acrossJitter, roomY)
        case .top: dy = -side(roomY); dx = jitter(acrossJitter, roomX)
        case .bottom: dy = side(roomY); dx = jitter(acrossJitter, roomX)
        }
        return Scene(shape: shape, color: color, background: background, size: size, position: position,
                     centerX: half + dx, centerY: half + dy, extent: extent)
    }
}
