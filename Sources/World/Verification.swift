/// What the verifier read from one image.
public struct Verification: Sendable, Equatable {
    /// The attributes read. With no clear object only `background` is set.
    public var attributes: Attributes
    /// Whether one object stands out clearly from the background and matches some shape well.
    public var foundObject: Bool
    /// How well the best shape template explains the object, in [0, 1] (1: all of the image's
    /// difference from the background, beyond its noise, is the fitted shape).
    public var confidence: Float
    /// The second-best shape, and how much worse it fits: the increase of the squared residual in
    /// pixels of coverage (about 0 when the two shapes are indistinguishable here).
    public var runnerUp: Shape?
    public var shapeMargin: Float
    /// How well each shape's template, fitted on its own, explains the object, on `confidence`'s
    /// scale (the best shape's value is `confidence`); empty when no object stands out at all. A
    /// graded reading of a wrong shape: how near the object came to the one it should have been.
    public var shapeFit: [Shape: Float]
    /// Measured object and background colours, sRGB in [0, 1].
    public var objectRGB: SIMD3<Float>
    public var backgroundRGB: SIMD3<Float>
    /// The fitted box of the best shape: centre and extent in pixels.
    public var centerX: Float
    public var centerY: Float
    public var extent: Float
    /// Outline fidelity: the soft IoU of the object's coverage with the best shape's clean (sharp)
    /// template at the fitted box, Σ min / Σ max, in [0, 1]; nil with no clear object. About 1 for a
    /// clean render; a ragged or blurred outline lowers it.
    public var outlineIoU: Float?
    /// The share of pixels the reading does not explain: farther than `unexplainedTolerance` (any
    /// channel, sRGB in [0, 1]) from the image it describes — the background, plus the fitted shape
    /// in the object colour when there is one. 0 for a clean render; specks, smears and second
    /// objects raise it.
    public var unexplained: Float
    /// The unexplained pixels that are not within a pixel of the fitted outline (all of them with no
    /// object): specks, smears and second objects, but not a ragged edge. What `isClean` reads.
    public var stray: Float

    /// The share of stray pixels up to which an image counts as clean: a uniform background and at
    /// most one object of a known shape, whatever its outline (see docs/decisions.md, "Clean images").
    public static let cleanStrayLimit: Float = 0.02

    /// Whether the reading explains the image: a flat field, or one object on it, with at most
    /// `cleanStrayLimit` of the pixels stray.
    public var isClean: Bool { stray <= Self.cleanStrayLimit }

    /// The colour distance (largest channel difference, sRGB in [0, 1]) beyond which a pixel counts as
    /// unexplained.
    public static let unexplainedTolerance: Float = 0.2

    public init(attributes: Attributes, foundObject: Bool, confidence: Float, runnerUp: Shape?,
                shapeMargin: Float, objectRGB: SIMD3<Float>, backgroundRGB: SIMD3<Float>,
                centerX: Float, centerY: Float, extent: Float, shapeFit: [Shape: Float] = [:],
                outlineIoU: Float? = nil, unexplained: Float = 0, stray: Float = 0) {
        self.attributes = attributes; self.foundObject = foundObject; self.confidence = confidence
        self.runnerUp = runnerUp; self.shapeMargin = shapeMargin; self.shapeFit = shapeFit
        self.objectRGB = objectRGB; self.backgroundRGB = backgroundRGB
        self.centerX = centerX; self.centerY = centerY; self.extent = extent
        self.outlineIoU = outlineIoU; self.unexplained = unexplained; self.stray = stray
    }
}
