import Tensors

/// Explicit captions: sentences that state attributes of the world in words, from several templates
/// with synonyms ("a red circle on a white background", "small red disc, white backdrop", "a white
/// background with a red circle on the left", …). They are what pretraining pairs with renders and
/// what `world:explicit` prompts are; `parse` reads any of them back.
public enum Caption {
    /// Number of templates; `make(_:template:)` accepts 0..<templateCount.
    public static let templateCount = 7

    /// The canonical caption of `attributes` (template 0, first word of every synonym list):
    /// "a [size] <colour> <shape> [<position> of] [on] a <background> background". Attributes left nil
    /// are left unsaid.
    public static func make(_ attributes: Attributes) -> String {
        compose(attributes, template: 0) { $0[0] }
    }

    /// The caption of `attributes` by template `template` (taken modulo `templateCount`), with the
    /// canonical words.
    public static func make(_ attributes: Attributes, template: Int) -> String {
        compose(attributes, template: template) { $0[0] }
    }

    /// The caption of `attributes` by template `template`, with synonyms drawn from `rng`.
    public static func make(_ attributes: Attributes, template: Int, rng: inout RNG) -> String {
        compose(attributes, template: template) { $0[rng.int(below: $0.count)] }
    }

    /// A random explicit caption and the attributes it states: shape and colour always, a background
    /// of another colour 70% of the time, size and position each half the time; the template and
    /// synonyms are random too. Render it with `Renderer.render(attributes, rng:into:)`, which draws
    /// what the caption leaves unsaid.
    public static func random(_ rng: inout RNG) -> (text: String, attributes: Attributes) {
        let shape = Shape.allCases[rng.int(below: Shape.allCases.count)]
        let colors = PaletteColor.allCases
        let color = colors[rng.int(below: colors.count)]
        var a = Attributes(shape: shape, color: color)
        if rng.uniform() < 0.7 {
            let others = colors.filter { $0 != color }
            a.background = others[rng.int(below: others.count)]
        }
        if rng.uniform() < 0.5 { a.size = Size.allCases[rng.int(below: Size.allCases.count)] }
        if rng.uniform() < 0.5 { a.position = Position.allCases[rng.int(below: Position.allCases.count)] }
        let template = rng.int(below: templateCount)
        return (make(a, template: template, rng: &rng), a)
    }

    /// Reads the attributes a caption states; nil when it names no shape, or two different shapes or
    /// object colours (see `CaptionParser`).
    public static func parse(_ text: String) -> Attributes? {
        CaptionParser.parse(text)
    }

    private static func compose(_ a: Attributes, template: Int, pick: ([String]) -> String) -> String {
        // The noun phrase: "[size] [colour] shape".
        var words: [String] = []
        if let s = a.size { words.append(pick(CaptionLexicon.sizeWords(s))) }
        if let c = a.color { words.append(pick(CaptionLexicon.colorWords(c))) }
        words.append(a.shape.map { pick(CaptionLexicon.shapeWords($0)) } ?? "shape")
        let noun = words.joined(separator: " ")
        let object = article(noun) + " " + noun
        let position = a.position.map { pick(CaptionLexicon.positionPhrases($0)) }
        let bg = a.background.map { pick(CaptionLexicon.colorWords($0)) }
        let bgWord = pick(CaptionLexicon.backgroundWords)

        switch ((template % templateCount) + templateCount) % templateCount {
        case 0:
            // a small red circle on the left of a white background
            var s = object
            if let p = position { s += " " + p }
            if let b = bg { s += (position == nil ? " on " : " of ") + article(b) + " \(b) background" }
            return s
        case 1:
            // small red circle, on the left, white backdrop
            var parts = [noun]
            if let p = position { parts.append(p) }
            if let b = bg { parts.append("\(b) \(bgWord)") }
            return parts.joined(separator: ", ")
        case 2:
            // a small red circle on the left against a white background
            var s = object
            if let p = position { s += " " + p }
            if let b = bg { s += " against " + article(b) + " \(b) \(bgWord)" }
            return s
        case 3:
            // a white background with a small red circle on the left
            var s = object
            if let p = position { s += " " + p }
            if let b = bg { s = article(b) + " \(b) \(bgWord) with " + s }
            return s
        case 4:
            // a small red circle on the left, white background
            var s = object
            if let p = position { s += " " + p }
            if let b = bg { s += ", \(b) \(bgWord)" }
            return s
        case 5:
            // small red circle on white, on the left
            var s = noun
            if let b = bg { s += " on \(b)" }
            if let p = position { s += ", " + p }
            return s
        default:
            // a picture of a small red circle on the left on a white background
            var s = "a picture of " + object
            if let p = position { s += " " + p }
            if let b = bg { s += " on " + article(b) + " \(b) \(bgWord)" }
            return s
        }
    }

    /// "a" or "an" before `word`.
    private static func article(_ word: String) -> String {
        guard let f = word.first else { return "a" }
        return "aeio".contains(f) ? "an" : "a"
    }
}
