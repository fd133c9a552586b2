/// Reads attributes out of an explicit caption by its words, not its template, so every template and
/// hand-written variants ("a brown thin rectangle on a white background") read alike.
///
/// A colour names the object when the next attribute word after it is a shape ("red circle", "brown
/// thin rectangle"), the background when that word is "background"/"backdrop" ("white background
/// with …"); a colour followed by neither names the background after "on"/"against"/"over" ("red
/// circle on white") and otherwise the object. Size and position are read from their keywords.
enum CaptionParser {
    private enum Token: Equatable {
        case shape(Shape), color(PaletteColor), size(Size), position(Position), background
        case word(String)
    }

    static func parse(_ text: String) -> Attributes? {
        let tokens = tokenize(text)
        var result = Attributes()
        var shape: Shape?
        for t in tokens {
            if case let .shape(s) = t {
                if let old = shape, old != s { return nil }
                shape = s
            }
        }
        guard let shape else { return nil }
        result.shape = shape
        for (i, t) in tokens.enumerated() {
            switch t {
            case let .size(s):
                if let old = result.size, old != s { return nil }
                result.size = s
            case let .position(p):
                if let old = result.position, old != p { return nil }
                result.position = p
            case let .color(c):
                // The next attribute word decides.
                var next: Token?
                for u in tokens[(i + 1)...] {
                    switch u {
                    case .shape, .background, .color, .position: next = u
                    default: continue
                    }
                    break
                }
                let isBackground: Bool
                if case .shape = next {
                    isBackground = false
                } else if next == .background {
                    isBackground = true
                } else if i > 0, case let .word(w) = tokens[i - 1],
                          CaptionLexicon.backgroundPrepositions.contains(w) {
                    isBackground = true
                } else {
                    isBackground = result.color != nil
                }
                if isBackground {
                    if let old = result.background, old != c { return nil }
                    result.background = c
                } else {
                    if let old = result.color, old != c { return nil }
                    result.color = c
                }
            default:
                continue
            }
        }
        return result
    }

    /// One-word and two-word vocabulary entries.
    private static let vocabulary: (single: [String: Token], double: [String: Token]) = {
        var single: [String: Token] = [:]
        var double: [String: Token] = [:]
        func add(_ w: String, _ t: Token) {
            if w.contains(" ") { double[w] = t } else { single[w] = t }
        }
        for s in Shape.allCases { for w in CaptionLexicon.shapeWords(s) { add(w, .shape(s)) } }
        for (w, s) in CaptionLexicon.extraShapeWords { add(w, .shape(s)) }
        for c in PaletteColor.allCases { for w in CaptionLexicon.colorWords(c) { add(w, .color(c)) } }
        for (w, c) in CaptionLexicon.extraColorWords { add(w, .color(c)) }
        for s in Size.allCases { for w in CaptionLexicon.sizeWords(s) { add(w, .size(s)) } }
        for (w, s) in CaptionLexicon.extraSizeWords { add(w, .size(s)) }
        for (w, p) in CaptionLexicon.positionKeywords { add(w, .position(p)) }
        for w in CaptionLexicon.backgroundWords { add(w, .background) }
        for w in CaptionLexicon.extraBackgroundWords { add(w, .background) }
        return (single, double)
    }()

    private static func tokenize(_ text: String) -> [Token] {
        let lowered = text.lowercased()
        var words: [String] = []
        var current = ""
        for ch in lowered {
            if ch.isLetter { current.append(ch) } else if !current.isEmpty { words.append(current); current = "" }
        }
        if !current.isEmpty { words.append(current) }

        let (single, double) = vocabulary
        var tokens: [Token] = []
        var i = 0
        while i < words.count {
            if i + 1 < words.count, let t = double[words[i] + " " + words[i + 1]] {
                tokens.append(t); i += 2; continue
            }
            tokens.append(single[words[i]] ?? .word(words[i]))
            i += 1
        }
        return tokens
    }
}
