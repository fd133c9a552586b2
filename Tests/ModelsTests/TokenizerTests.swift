import Foundation
import XCTest
import Models

final class TokenizerTests: XCTestCase {
    func testIdsEqualTheReferenceForEveryFixturePrompt() throws {
        let fixture = try MiniLMFixture.load()
        let tokenizer = try SharedEncoder.get().tokenizer
        XCTAssertGreaterThanOrEqual(fixture.prompts.count, 40)
        XCTAssertEqual(fixture.maxLength, 32)
        var mismatches: [String] = []
        for p in fixture.prompts {
            let ids = try tokenizer.encode(p.text, maxLength: fixture.maxLength)
            if ids != p.ids {
                let ours = ids.map { tokenizer.tokens[Int($0)] }
                mismatches.append("\(p.text.debugDescription): ours \(ours) reference \(p.tokens)")
            }
        }
        XCTAssert(mismatches.isEmpty, "\(mismatches.count) prompts differ:\n" + mismatches.joined(separator: "\n"))
    }

    func testOrdinaryWordsGetOrdinaryIds() throws {
        let tokenizer = try SharedEncoder.get().tokenizer
        XCTAssertEqual(try tokenizer.encode("the flag of Japan"), [101, 1996, 5210, 1997, 2900, 102])
        XCTAssertEqual(tokenizer.wordPieces("Crème brûlée!"), ["cr", "##eme", "br", "##ule", "##e", "!"])
    }

    func testTruncationKeepsClassAndSeparator() throws {
        let tokenizer = try SharedEncoder.get().tokenizer
        let long = Array(repeating: "red circle", count: 40).joined(separator: " ")
        let ids = try tokenizer.encode(long)
        XCTAssertEqual(ids.count, 32)
        XCTAssertEqual(ids.first, tokenizer.classID)
        XCTAssertEqual(ids.last, tokenizer.separatorID)
        let short = try tokenizer.encode(long, maxLength: 5)
        XCTAssertEqual(short, [tokenizer.classID] + Array(ids[1..<4]) + [tokenizer.separatorID])
        XCTAssertEqual(try tokenizer.encode("", maxLength: 2), [tokenizer.classID, tokenizer.separatorID])
        XCTAssertThrowsError(try tokenizer.encode("a", maxLength: 1))
    }

    func testWordsLongerThanOneHundredCharactersAreUnknown() throws {
        let tokenizer = try SharedEncoder.get().tokenizer
        let hundred = String(repeating: "a", count: 100)
        XCTAssertFalse(tokenizer.pieceIDs(hundred).contains(tokenizer.unknownID))
        XCTAssertEqual(tokenizer.pieceIDs(hundred + "a"), [tokenizer.unknownID])
        // A word with an unmatched character is a single [UNK], not a partial match.
        XCTAssertEqual(tokenizer.pieceIDs("ab\u{1D401}cd"), [tokenizer.unknownID])
    }

    func testCanonicallyEquivalentSpellingsAgreeAndHangulStaysDecomposed() throws {
        let tokenizer = try SharedEncoder.get().tokenizer
        XCTAssertEqual(tokenizer.pieceIDs("caf\u{E9}"), tokenizer.pieceIDs("cafe\u{301}"))
        // NFD turns a Hangul syllable into jamo; Swift's String equality would call them equal to the
        // precomposed syllable in the vocabulary, BERT does not.
        let pieces = tokenizer.wordPieces("\u{D55C}")
        XCTAssertEqual(pieces, ["\u{1112}", "##\u{1161}", "##\u{11AB}"])
    }

    func testBatchPadsWithZerosAndMasks() throws {
        let tokenizer = try SharedEncoder.get().tokenizer
        let batch = try tokenizer.encode(["a stop sign", "", "the flag of Japan"])
        XCTAssertEqual(batch.count, 3)
        XCTAssertEqual(batch.length, 6)
        XCTAssertEqual(batch.lengths, [5, 2, 6])
        XCTAssertEqual(batch.sequence(1), [101, 102])
        XCTAssertEqual(Array(batch.ids[6..<12]), [101, 102, 0, 0, 0, 0])
        XCTAssertEqual(Array(batch.mask[6..<12]), [1, 1, 0, 0, 0, 0])
        XCTAssertEqual(batch.sequence(2), try tokenizer.encode("the flag of Japan"))
        let fixed = try tokenizer.encode(["a stop sign"], padTo: 32)
        XCTAssertEqual(fixed.length, 32)
        XCTAssertEqual(fixed.mask.reduce(0, +), 5)
        XCTAssertThrowsError(try tokenizer.encode(["the flag of Japan"], padTo: 3))
    }

    func testVocabularyFileErrorsNameTheFile() throws {
        let dir = try makeTemporaryFolder("vocab")
        defer { try? FileManager.default.removeItem(at: dir) }
        let missing = dir.appendingPathComponent("vocab.txt")
        XCTAssertThrowsError(try WordPieceTokenizer(vocabularyFile: missing)) { error in
            XCTAssertEqual(error as? TextEncoderError, .missingFile(path: missing.path))
        }
        try "[PAD]\n[CLS]\n[SEP]\nhello\n".write(to: missing, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try WordPieceTokenizer(vocabularyFile: missing)) { error in
            XCTAssert(String(describing: error).contains(missing.path), "\(error)")
            XCTAssert(String(describing: error).contains("[UNK]"), "\(error)")
        }
        try Data([0x5B, 0x50, 0x41, 0x44, 0x5D, 0x0A, 0xFF, 0xFE, 0x0A]).write(to: missing)
        XCTAssertThrowsError(try WordPieceTokenizer(vocabularyFile: missing)) { error in
            XCTAssert(String(describing: error).contains("UTF-8"), "\(error)")
        }
        // CRLF line ends are read like LF ones.
        try "[PAD]\r\n[UNK]\r\n[CLS]\r\n[SEP]\r\nhello\r\n##s\r\n".write(to: missing, atomically: true, encoding: .utf8)
        let small = try WordPieceTokenizer(vocabularyFile: missing)
        XCTAssertEqual(small.tokens.count, 6)
        XCTAssertEqual(try small.encode("Hellos, world"), [2, 4, 5, 1, 1, 3])
    }
}
