import Foundation

/// BERT's uncased WordPiece tokenizer, as transformers' `BertTokenizer` runs it for all-MiniLM-L6-v2.
///
/// Special tokens written literally in the text (`[MASK]`, `[SEP]` …) are kept whole, as transformers
/// does; the rest goes through `BasicTokenizer` and then greedy longest-match-first WordPiece with
/// `##` continuations, a word longer than 100 characters or without a match becoming `[UNK]`.
/// `encode` adds `[CLS] … [SEP]` and truncates to `maxLength` tokens in all. Immutable and thread-safe.
public final class WordPieceTokenizer: @unchecked Sendable {
    /// The vocabulary, index = id.
    public let tokens: [String]
    /// Default total length (`[CLS]` and `[SEP]` included) that `encode` truncates to.
    public let maxLength: Int
    /// Words longer than this many characters become `[UNK]`.
    public let maxCharactersPerWord = 100

    public let padID: Int32
    public let unknownID: Int32
    public let classID: Int32
    public let separatorID: Int32

    private let wholeWords: [[UInt8]: Int32]
    private let continuations: [[UInt8]: Int32]
    private let specials: [(bytes: [UInt8], id: Int32)]

    /// Reads `vocab.txt` (one token per line, id = line number). Throws naming the file when it is
    /// missing, not UTF-8, or lacks BERT's special tokens.
    public convenience init(vocabularyFile url: URL, maxLength: Int = 32) throws {
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw TextEncoderError.missingFile(path: url.path)
        }
        let data: Data
        do { data = try Data(contentsOf: url, options: .mappedIfSafe) } catch {
            throw TextEncoderError.invalidFile(path: url.path, reason: "cannot read: \(error)")
        }
        guard String(data: data, encoding: .utf8) != nil else {
            throw TextEncoderError.invalidFile(path: url.path, reason: "not valid UTF-8")
        }
        var lines: [String] = []
        var line: [UInt8] = []
        var previousCR = false
        for byte in data {
            if byte == 0x0A {
                if !previousCR { lines.append(String(decoding: line, as: UTF8.self)) }
                line.removeAll(keepingCapacity: true)
                previousCR = false
            } else if byte == 0x0D {
                lines.append(String(decoding: line, as: UTF8.self))
                line.removeAll(keepingCapacity: true)
                previousCR = true
            } else {
                line.append(byte)
                previousCR = false
            }
        }
        if !line.isEmpty { lines.append(String(decoding: line, as: UTF8.self)) }
        do { try self.init(vocabulary: lines, maxLength: maxLength) } catch let e as TextEncoderError {
            if case .invalidArgument(let message) = e {
                throw TextEncoderError.invalidFile(path: url.path, reason: message)
            }
            throw e
        }
    }

    /// A tokenizer over `vocabulary` (index = id). Later duplicates win, as in transformers.
    public init(vocabulary: [String], maxLength: Int = 32) throws {
        guard maxLength >= 2 else {
            throw TextEncoderError.invalidArgument("maxLength \(maxLength) leaves no room for [CLS] and [SEP]")
        }
        tokens = vocabulary
        self.maxLength = maxLength
        var whole: [[UInt8]: Int32] = [:]
        var cont: [[UInt8]: Int32] = [:]
        whole.reserveCapacity(vocabulary.count)
        for (i, token) in vocabulary.enumerated() {
            let bytes = Array(token.utf8)
            whole[bytes] = Int32(i)
            if bytes.count > 2 && bytes[0] == 0x23 && bytes[1] == 0x23 {
                cont[Array(bytes[2...])] = Int32(i)
            }
        }
        func id(_ name: String) throws -> Int32 {
            guard let id = whole[Array(name.utf8)] else {
                throw TextEncoderError.invalidArgument("vocabulary has no \(name) token")
            }
            return id
        }
        padID = try id("[PAD]")
        unknownID = try id("[UNK]")
        classID = try id("[CLS]")
        separatorID = try id("[SEP]")
        specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"].compactMap { name in
            whole[Array(name.utf8)].map { (Array(name.utf8), $0) }
        }
        wholeWords = whole
        continuations = cont
    }

    /// The WordPiece strings of `text`, without `[CLS]`/`[SEP]` and without truncation.
    public func wordPieces(_ text: String) -> [String] { pieceIDs(text).map { tokens[Int($0)] } }

    /// The WordPiece ids of `text`, without `[CLS]`/`[SEP]` and without truncation.
    public func pieceIDs(_ text: String) -> [Int32] {
        var ids: [Int32] = []
        for segment in splitOnSpecialTokens(text) {
            switch segment {
            case .special(let id): ids.append(id)
            case .text(let part):
                for word in BasicTokenizer.words(part) { appendWordPieces(word, to: &ids) }
            }
        }
        return ids
    }

    /// `[CLS] pieces [SEP]`, the pieces truncated so that the whole has at most `maxLength` ids
    /// (the tokenizer's default when nil).
    public func encode(_ text: String, maxLength: Int? = nil) throws -> [Int32] {
        let limit = maxLength ?? self.maxLength
        guard limit >= 2 else {
            throw TextEncoderError.invalidArgument("maxLength \(limit) leaves no room for [CLS] and [SEP]")
        }
        var pieces = pieceIDs(text)
        if pieces.count > limit - 2 { pieces.removeLast(pieces.count - (limit - 2)) }
        return [classID] + pieces + [separatorID]
    }

    /// Encodes every text and pads the rows with `[PAD]` to the longest row, or to `padTo` when given
    /// (which must be at least the longest row).
    public func encode(_ texts: [String], maxLength: Int? = nil, padTo: Int? = nil) throws -> TokenBatch {
        try TokenBatchBuilder.batch(texts.map { try encode($0, maxLength: maxLength) }, padTo: padTo, padID: padID)
    }

    private enum Segment { case text(Substring), special(Int32) }

    /// Splits out literal special tokens (case-sensitive, leftmost-longest), as transformers does
    /// before normalising the rest.
    private func splitOnSpecialTokens(_ text: String) -> [Segment] {
        let utf8 = text.utf8
        guard utf8.contains(0x5B) else { return [.text(text[...])] }
        var segments: [Segment] = []
        var segmentStart = utf8.startIndex
        var i = utf8.startIndex
        while i < utf8.endIndex {
            if utf8[i] == 0x5B {
                var best: (length: Int, id: Int32)? = nil
                for special in specials {
                    if let end = utf8.index(i, offsetBy: special.bytes.count, limitedBy: utf8.endIndex),
                       utf8[i..<end].elementsEqual(special.bytes),
                       special.bytes.count > (best?.length ?? 0) {
                        best = (special.bytes.count, special.id)
                    }
                }
                if let best {
                    if segmentStart < i { segments.append(.text(text[segmentStart..<i])) }
                    segments.append(.special(best.id))
                    i = utf8.index(i, offsetBy: best.length)
                    segmentStart = i
                    continue
                }
            }
            i = utf8.index(after: i)
        }
        if segmentStart < utf8.endIndex { segments.append(.text(text[segmentStart..<utf8.endIndex])) }
        return segments
    }

    /// Greedy longest-match-first WordPiece of one word.
    private func appendWordPieces(_ word: [Unicode.Scalar], to ids: inout [Int32]) {
        if word.count > maxCharactersPerWord { ids.append(unknownID); return }
        var bytes: [UInt8] = []
        var offsets: [Int] = [0]
        bytes.reserveCapacity(word.count * 2)
        offsets.reserveCapacity(word.count + 1)
        for s in word {
            bytes.append(contentsOf: UTF8.encode(s)!)
            offsets.append(bytes.count)
        }
        let mark = ids.count
        var start = 0
        while start < word.count {
            var end = word.count
            var found: Int32? = nil
            while start < end {
                let key = Array(bytes[offsets[start]..<offsets[end]])
                if let id = (start == 0 ? wholeWords[key] : continuations[key]) { found = id; break }
                end -= 1
            }
            guard let id = found else {
                ids.removeLast(ids.count - mark)
                ids.append(unknownID)
                return
            }
            ids.append(id)
            start = end
        }
    }
}
