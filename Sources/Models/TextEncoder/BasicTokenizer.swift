import Foundation

/// BERT's "basic" pre-tokenisation for uncased models: the text rules that run before WordPiece.
///
/// Follows what transformers 5's `BertTokenizer` runs, the `BertNormalizer` + `BertPreTokenizer` of the
/// `tokenizers` library: drop NUL, U+FFFD and control/format/private-use characters, turn whitespace
/// into spaces, put spaces around CJK ideographs, strip accents (NFD, then drop nonspacing marks),
/// lower-case character by character, and split on whitespace and punctuation. Works on Unicode scalars
/// throughout: Swift's canonical-equivalence string comparison would merge strings BERT keeps apart.
///
/// Checked code point by code point against `tokenizers`: the only differences are characters whose
/// Unicode category changed or that were added after the (older) Unicode tables `tokenizers` uses —
/// recent marks and punctuation of rare scripts. Where transformers' older pure-Python tokenizer
/// differs from `tokenizers` (final sigma, the start of the last CJK block), we follow `tokenizers`.
public enum BasicTokenizer {
    /// The words of `text`, each an array of Unicode scalars, in order.
    public static func words(_ text: Substring) -> [[Unicode.Scalar]] {
        var words: [[Unicode.Scalar]] = []
        var current: [Unicode.Scalar] = []
        func flushWord() {
            if !current.isEmpty { appendNormalized(current, to: &words); current.removeAll(keepingCapacity: true) }
        }
        for s in text.unicodeScalars {
            let v = s.value
            if v == 0 || v == 0xFFFD || isControl(s) { continue }
            if isWhitespace(s) { flushWord(); continue }
            if isCJK(v) {
                flushWord()
                appendNormalized([s], to: &words)  // compatibility ideographs decompose (NFD)
                continue
            }
            current.append(s)
        }
        flushWord()
        return words
    }

    /// Strips accents of one whitespace-delimited token and lower-cases it (in that order, as the
    /// `tokenizers` library does), then splits it on punctuation.
    private static func appendNormalized(_ token: [Unicode.Scalar], to words: inout [[Unicode.Scalar]]) {
        let normalized = lowercase(stripAccents(token))
        var piece: [Unicode.Scalar] = []
        for s in normalized {
            if isPunctuation(s) {
                if !piece.isEmpty { words.append(piece); piece.removeAll(keepingCapacity: true) }
                words.append([s])
            } else if isWhitespace(s) {
                // Lower-casing and decomposition never make whitespace, but stay safe.
                if !piece.isEmpty { words.append(piece); piece.removeAll(keepingCapacity: true) }
            } else {
                piece.append(s)
            }
        }
        if !piece.isEmpty { words.append(piece) }
    }

    /// Per-character full Unicode lower-casing, as the `tokenizers` library does it (no final-sigma
    /// rule: "ΟΔΥΣΣΕΥΣ" ends in "σ", not "ς").
    static func lowercase(_ token: [Unicode.Scalar]) -> [Unicode.Scalar] {
        if token.allSatisfy({ $0.isASCII }) {
            return token.map { s in
                (s.value >= 65 && s.value <= 90) ? Unicode.Scalar(UInt8(s.value + 32)) : s
            }
        }
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(token.count)
        for s in token {
            let props = s.properties
            if props.changesWhenLowercased {
                out.append(contentsOf: props.lowercaseMapping.unicodeScalars)
            } else {
                out.append(s)
            }
        }
        return out
    }

    /// Canonical decomposition with nonspacing marks (category Mn) removed.
    static func stripAccents(_ token: [Unicode.Scalar]) -> [Unicode.Scalar] {
        if token.allSatisfy({ $0.isASCII }) { return token }
        var s = String.UnicodeScalarView()
        s.append(contentsOf: token)
        let decomposed = String(s).decomposedStringWithCanonicalMapping
        return decomposed.unicodeScalars.filter { $0.properties.generalCategory != .nonspacingMark }
    }

    /// Tab, newline and carriage return, and the Unicode space, line and paragraph separators.
    static func isWhitespace(_ s: Unicode.Scalar) -> Bool {
        switch s.value {
        case 0x20, 0x09, 0x0A, 0x0D: return true
        case 0..<0x80: return false
        default:
            switch s.properties.generalCategory {
            case .spaceSeparator, .lineSeparator, .paragraphSeparator: return true
            default: return false
            }
        }
    }

    /// Any "other" category (Cc, Cf, Cs, Co, Cn) except tab, newline and carriage return.
    static func isControl(_ s: Unicode.Scalar) -> Bool {
        switch s.value {
        case 0x09, 0x0A, 0x0D: return false
        case 0x20..<0x7F: return false
        default:
            switch s.properties.generalCategory {
            case .control, .format, .surrogate, .privateUse: return true
            default: return false
            }
        }
    }

    /// All non-alphanumeric printable ASCII, and every Unicode punctuation category (P*).
    static func isPunctuation(_ s: Unicode.Scalar) -> Bool {
        let v = s.value
        if (33...47).contains(v) || (58...64).contains(v) || (91...96).contains(v) || (123...126).contains(v) {
            return true
        }
        if v < 0x80 { return false }
        switch s.properties.generalCategory {
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
             .initialPunctuation, .finalPunctuation, .otherPunctuation:
            return true
        default:
            return false
        }
    }

    /// The CJK Unified Ideographs blocks (and compatibility ideographs) that BERT splits per character.
    /// The `tokenizers` library starts its last range at U+2B920 where transformers' Python code says
    /// U+2B820; we follow `tokenizers`, which is what `BertTokenizer` runs in transformers 5.
    static func isCJK(_ v: UInt32) -> Bool {
        (0x4E00...0x9FFF).contains(v) || (0x3400...0x4DBF).contains(v) || (0x20000...0x2A6DF).contains(v)
            || (0x2A700...0x2B73F).contains(v) || (0x2B740...0x2B81F).contains(v)
            || (0x2B920...0x2CEAF).contains(v) || (0xF900...0xFAFF).contains(v)
            || (0x2F800...0x2FA1F).contains(v)
    }
}
