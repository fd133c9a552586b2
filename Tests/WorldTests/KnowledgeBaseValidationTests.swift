import Foundation
import XCTest
@testable import World

/// Bad knowledge-base files are refused with an error that names the file, the item and the problem.
final class KnowledgeBaseValidationTests: XCTestCase {
    private func item(_ id: String, concept: String? = nil, split: String = "train",
                      implicit: String? = nil, explicit: String = "a red circle on a white background",
                      expect: String = #"{"shape": "circle", "color": "red", "background": "white"}"#,
                      superficial: String = "a white circle on a red background",
                      superficialExpect: String = #"{"shape": "circle", "color": "white", "background": "red"}"#,
                      extra: String = "") -> String {
        """
        {"id": "\(id)", "concept": "\(concept ?? id)", "family": "cultural", "subdomain": "flags",
         "split": "\(split)", "implicit": "\(implicit ?? "the thing called \(id)")",
         "explicit": "\(explicit)", "superficial": "\(superficial)",
         "expect": \(expect), "superficialExpect": \(superficialExpect)\(extra)}
        """
    }

    private func file(_ items: [String]) -> Data {
        Data(("{\"format\": \"erudiff-knowledge\", \"version\": 1, \"items\": [" + items.joined(separator: ",")
              + "]}").utf8)
    }

    /// Loads `data` and returns the error's text, failing the test when it loads.
    private func failure(_ data: Data, file: StaticString = #filePath, line: UInt = #line) -> String {
        do {
            _ = try KnowledgeBase(data: data, source: "test.json")
            XCTFail("loaded", file: file, line: line)
            return ""
        } catch {
            XCTAssertTrue(error is KnowledgeBaseError, "\(error)", file: file, line: line)
            return "\(error)"
        }
    }

    private func assertMentions(_ text: String, _ parts: [String], file: StaticString = #filePath,
                                line: UInt = #line) {
        for p in parts { XCTAssertTrue(text.contains(p), "\"\(text)\" lacks \"\(p)\"", file: file, line: line) }
    }

    func testAWellFormedFileLoads() throws {
        let base = try KnowledgeBase(data: file([item("a"), item("a-p", concept: "a", split: "test-paraphrase"),
                                                 item("b", split: "test-concept")]),
                                     source: "test.json")
        XCTAssertEqual(base.items.map(\.id), ["a", "a-p", "b"])
        // A bare array is accepted too (caller-supplied items).
        let bare = try KnowledgeBase(data: Data(("[" + item("c") + "]").utf8), source: "bare")
        XCTAssertEqual(bare.items.count, 1)
    }

    func testInvalidJSON() {
        assertMentions(failure(Data("{\"items\": [".utf8)), ["test.json", "invalid JSON"])
        assertMentions(failure(Data("42".utf8)), ["test.json", "neither an object nor an array"])
        assertMentions(failure(Data("{\"things\": []}".utf8)), ["unknown top-level field \"things\""])
        assertMentions(failure(Data("{\"version\": 2, \"items\": []}".utf8)), ["version 2"])
    }

    func testWordOutsideTheVocabularyNamesTheItem() {
        let bad = item("crimson-thing", expect: #"{"shape": "circle", "color": "crimson"}"#)
        assertMentions(failure(file([item("a"), bad])),
                       ["test.json", "item 1", "\"crimson-thing\"", "expect.color \"crimson\"", "\"light blue\""])
        let badShape = item("h", superficialExpect: #"{"shape": "hexagon", "color": "red"}"#)
        assertMentions(failure(file([badShape])), ["item 0", "superficialExpect.shape \"hexagon\""])
        let badKey = item("k", expect: #"{"shape": "circle", "colour": "red"}"#)
        assertMentions(failure(file([badKey])), ["unknown attribute \"colour\""])
        let badSplit = item("s", split: "test")
        assertMentions(failure(file([badSplit])), ["split \"test\" is not one of"])
    }

    func testMissingOrMistypedFields() {
        let missing = #"{"id": "m", "concept": "m", "family": "cultural", "subdomain": "flags", "split": "train"}"#
        assertMentions(failure(file([missing])), ["item 0", "\"m\"", "missing field \"implicit\""])
        assertMentions(failure(file([item("x", extra: #", "colour": "red""#)])), ["unknown field \"colour\""])
        assertMentions(failure(file(["17"])), ["item 0", "not an object"])
        assertMentions(failure(file([item("e", implicit: "  ")])), ["implicit is empty"])
    }

    func testSuperficialMustDifferOnAnExpectedAttribute() {
        // Differs only in size, which expect leaves unsaid: the gap's denominator would be 0.
        let same = item("same", superficial: "a large red circle on a white background",
                        superficialExpect: #"{"shape": "circle", "color": "red", "background": "white", "size": "large"}"#)
        assertMentions(failure(file([same])), ["\"same\"", "agrees with expect"])
    }

    func testCaptionsMustStateTheirAttributes() {
        let wrong = item("w", explicit: "a red square on a white background")
        assertMentions(failure(file([wrong])), ["\"w\"", "explicit caption", "shape: square", "not expect"])
        let unreadable = item("u", superficial: "something strange")
        assertMentions(failure(file([unreadable])), ["\"u\"", "superficial caption", "reads as nothing"])
        // Without the caption check such items load (callers may word anchors freely).
        XCTAssertNoThrow(try KnowledgeBase(data: file([wrong]), source: "t", checks: [.splits]))
    }

    func testItemsMustAgreeWithEachOther() {
        assertMentions(failure(file([item("a"), item("a")])), ["duplicate id \"a\""])
        assertMentions(failure(file([item("a", implicit: "The flag of X"), item("b", implicit: "the flag of x!")])),
                       ["same implicit prompt"])
        let otherFamily = item("b").replacingOccurrences(of: "\"cultural\"", with: "\"natural-science\"")
        assertMentions(failure(file([item("a"), otherFamily])), ["subdomain \"flags\" is in family cultural"])
        let conflicting = item("a-p", concept: "a", split: "test-paraphrase", explicit: "a red cross on a white background",
                               expect: #"{"shape": "cross", "color": "red", "background": "white"}"#)
        assertMentions(failure(file([item("a"), conflicting])), ["share concept \"a\""])
    }

    func testSplitRules() {
        let leaked = item("b", concept: "a", split: "test-concept")
        assertMentions(failure(file([item("a"), leaked])), ["test-concept item \"b\"", "train also has"])
        let orphan = item("p", concept: "nowhere", split: "test-paraphrase")
        assertMentions(failure(file([item("a"), orphan])), ["paraphrase \"p\"", "\"nowhere\""])
        let twice = item("a2", concept: "a")
        assertMentions(failure(file([item("a"), twice])), ["appears twice in train"])
        // Split rules can be left out for a caller's list of test items alone.
        XCTAssertNoThrow(try KnowledgeBase(data: file([orphan]), source: "t", checks: [.captions]))
    }

    func testFilesOnDisk() throws {
        let dir = FileManager.default.temporaryDirectory
            .appendingPathComponent("kb-test-\(ProcessInfo.processInfo.processIdentifier)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let good = dir.appendingPathComponent("good.json")
        try file([item("a")]).write(to: good)
        XCTAssertEqual(try KnowledgeBase.load(path: good.path).items.count, 1)

        let bad = dir.appendingPathComponent("bad.json")
        try file([item("z", expect: #"{"shape": "blob", "color": "red"}"#)]).write(to: bad)
        XCTAssertThrowsError(try KnowledgeBase.load(path: bad.path)) { error in
            assertMentions("\(error)", [bad.path, "\"z\"", "\"blob\""])
        }
        let missing = dir.appendingPathComponent("missing.json").path
        XCTAssertThrowsError(try KnowledgeBase.load(path: missing)) { error in
            guard case .unreadable(let path, _)? = error as? KnowledgeBaseError else {
                return XCTFail("\(error)")
            }
            XCTAssertEqual(path, missing)
        }
    }
}
