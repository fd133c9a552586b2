/// The words of the bundled world: every shape, colour, size and position a caption can name and the
/// verifier can read back. Knowledge-base items (`expect`, `superficialExpect`) use exactly these
/// raw values, so the JSON data file and the code cannot drift apart silently.

/// A flat shape the renderer can draw.
public enum Shape: String, CaseIterable, Codable, Sendable {
    case circle, square, rectangle, triangle, star, heart, pentagon, diamond, crescent, ring, cross, drop
}

/// A named palette colour, for objects and backgrounds.
public enum PaletteColor: String, CaseIterable, Codable, Sendable {
    case red, orange, yellow, green, blue
    case lightBlue = "light blue"
    case purple, pink, brown, black, white, gray
}

/// How large the object is relative to the 32×32 canvas.
public enum Size: String, CaseIterable, Codable, Sendable {
    case small, large
}

/// Where the object sits on the canvas.
public enum Position: String, CaseIterable, Codable, Sendable {
    case center, left, right, top, bottom
}

/// What an image shows, as far as the world can say: every field is optional so that a caption can
/// leave things unsaid and an expectation can check only what it names.
public struct Attributes: Codable, Hashable, Sendable {
    public var shape: Shape?
    public var color: PaletteColor?
    public var background: PaletteColor?
    public var size: Size?
    public var position: Position?

    public init(shape: Shape? = nil, color: PaletteColor? = nil, background: PaletteColor? = nil,
                size: Size? = nil, position: Position? = nil) {
        self.shape = shape; self.color = color; self.background = background
        self.size = size; self.position = position
    }
}
