import Foundation
import XCTest
import Models

/// The reference encodings written by `scripts/make-minilm-fixture.py` (transformers' BertTokenizer and
/// BertModel, sentence-transformers' pooling), and the text encoder the tests share.
struct MiniLMFixture {
    struct Prompt {
        let text: String
        let ids: [Int32]
        let tokens: [String]
        let meanPooled: [Float]
        let pooled: [Float]
        /// `ids.count × 384`, row-major, for a few prompts only.
        let states: [Float]?
    }

    let maxLength: Int
    let prompts: [Prompt]

    static let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Fixtures").appendingPathComponent("minilm.json")

    static func load() throws -> MiniLMFixture {
        let data = try Data(contentsOf: url)
        guard let root = try JSONSerialization.jsonObject(with: data) as? [String: Any],
              let list = root["prompts"] as? [[String: Any]],
              let maxLength = (root["maxLength"] as? NSNumber)?.intValue else {
            throw TextEncoderError.invalidFile(path: url.path, reason: "not a MiniLM fixture")
        }
        func floats(_ any: Any?) -> [Float] { ((any as? [Any]) ?? []).map { ($0 as! NSNumber).floatValue } }
        let prompts = list.map { p -> Prompt in
            let states = (p["states"] as? [Any]).map { rows in rows.flatMap { floats($0) } }
            return Prompt(text: p["text"] as! String,
                          ids: (p["ids"] as! [Any]).map { Int32(($0 as! NSNumber).intValue) },
                          tokens: p["tokens"] as! [String],
                          meanPooled: floats(p["meanPooled"]), pooled: floats(p["pooled"]), states: states)
        }
        return MiniLMFixture(maxLength: maxLength, prompts: prompts)
    }
}

/// The encoder loaded once for all tests, from the installed package (scripts/setup). Absent weights
/// are an error that fails the test with the locator's message, never a skip.
enum SharedEncoder {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var loaded: Result<TextEncoder, Error>?

    static func get() throws -> TextEncoder {
        lock.lock(); defer { lock.unlock() }
        if loaded == nil { loaded = Result { try TextEncoder() } }
        return try loaded!.get()
    }
}

/// Largest absolute difference of two equally long arrays (infinity when the lengths differ).
func maxAbsDiff(_ a: [Float], _ b: [Float]) -> Float {
    guard a.count == b.count else { return .infinity }
    var m: Float = 0
    for i in 0..<a.count { m = max(m, abs(a[i] - b[i])) }
    return m
}

/// A temporary folder deleted by the caller's `defer`.
func makeTemporaryFolder(_ name: String) throws -> URL {
    let url = FileManager.default.temporaryDirectory
        .appendingPathComponent("erudiff-\(name)-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}
