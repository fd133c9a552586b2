/// The sRGB values of the named palette, chosen so that every pair is far apart in CIELAB (ΔE ≥ 33:
/// light blue / blue / purple, orange / brown / red, gray / white / black and pink / red all stay
/// apart) and in RGB, so a 32×32 render, or a noisy generated one, still names its colours.
public enum Palette {
    /// sRGB in [0, 1] of every palette colour, in `PaletteColor.allCases` order.
    public static let rgbTable: [SIMD3<Float>] = PaletteColor.allCases.map { rgbValue($0) }

    /// CIELAB of every palette colour, in `PaletteColor.allCases` order.
    public static let labTable: [CIELAB] = rgbTable.map { CIELAB(srgb: $0) }

    private static func rgbValue(_ c: PaletteColor) -> SIMD3<Float> {
        switch c {
        case .red: return SIMD3(0.86, 0.08, 0.08)
        case .orange: return SIMD3(1.00, 0.55, 0.00)
        case .yellow: return SIMD3(1.00, 0.92, 0.12)
        case .green: return SIMD3(0.10, 0.62, 0.16)
        case .blue: return SIMD3(0.06, 0.22, 0.90)
        case .lightBlue: return SIMD3(0.50, 0.82, 1.00)
        case .purple: return SIMD3(0.56, 0.10, 0.66)
        case .pink: return SIMD3(1.00, 0.52, 0.78)
        case .brown: return SIMD3(0.46, 0.26, 0.08)
        case .black: return SIMD3(0.00, 0.00, 0.00)
        case .white: return SIMD3(1.00, 1.00, 1.00)
        case .gray: return SIMD3(0.52, 0.52, 0.52)
        }
    }

    /// The palette colour nearest to an sRGB colour in [0, 1], by CIELAB distance, with that distance.
    public static func nearest(srgb: SIMD3<Float>) -> (color: PaletteColor, distance: Float) {
        nearest(lab: CIELAB(srgb: srgb))
    }

    /// The palette colour nearest to a CIELAB colour, with the distance.
    public static func nearest(lab: CIELAB) -> (color: PaletteColor, distance: Float) {
        var best = 0
        var bestD = Float.infinity
        for (i, p) in labTable.enumerated() {
            let d = p.distance(to: lab)
            if d < bestD { bestD = d; best = i }
        }
        return (PaletteColor.allCases[best], bestD)
    }
}

extension PaletteColor {
    /// sRGB components in [0, 1].
    public var rgb: SIMD3<Float> { Palette.rgbTable[index] }

    /// CIELAB coordinates.
    public var lab: CIELAB { Palette.labTable[index] }

    /// Position in `allCases` (stable: the order of the declaration).
    public var index: Int {
        switch self {
        case .red: return 0
        case .orange: return 1
        case .yellow: return 2
        case .green: return 3
        case .blue: return 4
        case .lightBlue: return 5
        case .purple: return 6
        case .pink: return 7
        case .brown: return 8
        case .black: return 9
        case .white: return 10
        case .gray: return 11
        }
    }
}
