import Foundation
import XCTest

/// The server knows no model (DESIGN §2): its sources import none of erudiff's modules, and its
/// target depends only on the C shims of libuv and jansson.
final class LayeringTests: XCTestCase {
    private static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()
    private static let forbidden: Set<String> = ["Tensors", "Models", "Diffusion", "World", "EruDiff", "Daemon"]

    func testSourcesImportNoModelModule() throws {
        let dir = Self.root.appendingPathComponent("Sources/RPCServer")
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".swift") }
        XCTAssertGreaterThan(files.count, 10)
        for file in files {
            let text = try String(contentsOf: dir.appendingPathComponent(file), encoding: .utf8)
            for line in text.split(separator: "\n") {
                let words = line.split(separator: " ").map(String.init)
                guard let i = words.firstIndex(of: "import"), i + 1 < words.count,
                      words[..<i].allSatisfy({ $0.hasPrefix("@") || ["public", "internal", "private"].contains($0) })
                else { continue }
                let kinds: Set<String> = ["struct", "class", "enum", "protocol", "func", "var", "let", "typealias"]
                let name = kinds.contains(words[i + 1]) && i + 2 < words.count ? words[i + 2] : words[i + 1]
                let module = String(name.split(separator: ".")[0])
                XCTAssertFalse(Self.forbidden.contains(module), "\(file): \(line)")
            }
        }
    }

    func testTargetDependsOnlyOnTheCShims() throws {
        let manifest = try String(contentsOf: Self.root.appendingPathComponent("Package.swift"), encoding: .utf8)
        let line = try XCTUnwrap(manifest.split(separator: "\n").first { $0.contains(#".target(name: "RPCServer""#) })
        let deps = try XCTUnwrap(line.range(of: #"dependencies: \[[^\]]*\]"#, options: .regularExpression))
        XCTAssertEqual(String(line[deps]), #"dependencies: ["CUV", "CJansson"]"#)
    }
}
