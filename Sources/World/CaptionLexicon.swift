/// The words captions use for each attribute: the first of each list is the canonical word, the
/// others are synonyms that captions draw from and the parser reads. Extra words that only the parser
/// accepts (so hand-written captions read too) are kept apart from the ones captions are made of.
enum CaptionLexicon {
    static func shapeWords(_ s: Shape) -> [String] {
        switch s {
        case .circle: return ["circle", "disc", "disk"]
        case .square: return ["square"]
        case .rectangle: return ["rectangle", "bar", "oblong"]
        case .triangle: return ["triangle"]
        case .star: return ["star"]
        case .heart: return ["heart"]
        case .pentagon: return ["pentagon"]
        case .diamond: return ["diamond", "rhombus"]
        case .crescent: return ["crescent"]
        case .ring: return ["ring", "hoop", "annulus"]
        case .cross: return ["cross", "plus sign"]
        case .drop: return ["drop", "teardrop", "droplet"]
        }
    }

    static func colorWords(_ c: PaletteColor) -> [String] {
        switch c {
        case .lightBlue: return ["light blue", "pale blue"]
        case .purple: return ["purple", "violet"]
        case .gray: return ["gray", "grey"]
        default: return [c.rawValue]
        }
    }

    static func sizeWords(_ s: Size) -> [String] {
        s == .small ? ["small", "little"] : ["large", "big"]
    }

    /// Phrases placing the object; each contains exactly one of `positionKeywords`.
    static func positionPhrases(_ p: Position) -> [String] {
        switch p {
        case .center: return ["in the center", "in the middle", "in the centre"]
        case .left: return ["on the left", "at the left", "on the left side"]
        case .right: return ["on the right", "at the right", "on the right side"]
        case .top: return ["at the top", "near the top"]
        case .bottom: return ["at the bottom", "near the bottom"]
        }
    }

    static let backgroundWords = ["background", "backdrop"]

    // Parser-only words.
    static let extraShapeWords: [String: Shape] = [
        "circles": .circle, "dot": .circle, "discs": .circle, "squares": .square, "rectangles": .rectangle,
        "triangles": .triangle, "stars": .star, "hearts": .heart, "pentagons": .pentagon,
        "diamonds": .diamond, "crescents": .crescent, "rings": .ring, "crosses": .cross, "drops": .drop,
        "raindrop": .drop, "plus": .cross,
    ]
    static let extraColorWords: [String: PaletteColor] = [
        "sky blue": .lightBlue, "lightblue": .lightBlue, "light grey": .gray, "light gray": .gray,
    ]
    static let extraSizeWords: [String: Size] = ["tiny": .small, "huge": .large]
    static let positionKeywords: [String: Position] = [
        "center": .center, "centre": .center, "middle": .center, "centered": .center, "centred": .center,
        "left": .left, "right": .right, "top": .top, "upper": .top, "bottom": .bottom, "lower": .bottom,
    ]
    static let extraBackgroundWords: Set<String> = ["backgrounds", "backdrops"]
    /// Words after which a bare colour names the background ("a red circle on white").
    static let backgroundPrepositions: Set<String> = ["on", "against", "over"]
}
