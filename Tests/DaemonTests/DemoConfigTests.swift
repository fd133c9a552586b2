import Foundation
import XCTest
import EruDiff
import Models
@testable import Daemon
import RPCServer

/// The main job lives twice: `scripts/demo.json` holds the params `scripts/demo` sends to the daemon,
/// `RefactoringOptions.standard` the same refactoring run in process (`erudiff-train refactor`). The
/// README quotes the two as one run, so each section of demo.json, read by the daemon's own parameter
/// code, must ask for exactly what `standard` does — a default changed in one place only fails here.
final class DemoConfigTests: XCTestCase {
    private static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()
    private let standard = RefactoringOptions.standard

    private func section(_ name: String) throws -> Params {
        let data = try Data(contentsOf: Self.root.appendingPathComponent("scripts/demo.json"))
        let config = try XCTUnwrap(JSON.parse(Array(data)).objectValue, "demo.json is not an object")
        return try Params(method: name, XCTUnwrap(config[name], "demo.json has no \(name) section"))
    }

    /// The mini model's config, to resolve named LoRA targets ("all") as the worker does.
    private func miniConfig() throws -> FluxConfig {
        try FluxConfig(contentsOf: Self.root.appendingPathComponent("models/mini/config.json"))
    }

    func testMatchDistributionsSectionIsTheStandardDKDM() throws {
        let p = try section("matchDistributions")
        XCTAssertEqual(try p.string("set"), standard.dkdmSet)
        var (got, lora) = try MatchParams.options(p)
        try p.finish()  // no member the daemon would reject
        let config = try miniConfig()
        got.lora = try lora.resolve(config)
        var want = standard.dkdm
        want.lora.targets = want.lora.resolvedTargets(config)
        want.lora.allLayers = false
        // The in-process run starts DK-DM on a fresh adapter whatever the option says.
        want.freshAdapter = true
        XCTAssertEqual(got, want)
    }

    func testRLStepSectionIsTheStandardNORL() throws {
        let p = try section("rlStep")
        XCTAssertEqual(try p.string("set"), standard.rlSet)
        XCTAssertEqual(try p.stringArray("kinds"), standard.rlKinds.map(\.rawValue))
        XCTAssertEqual(try p.int("captions", default: 0, in: 0...10_000), standard.rlCaptions)
        var (got, _) = try RLParams.options(p)
        try p.finish()
        // Both continue the DK-DM adapter (freshAdapter false), so the LoRA shape is never used; the
        // in-process run copies DK-DM's.
        var want = standard.norl
        want.lora = got.lora
        XCTAssertFalse(got.freshAdapter)
        got.freshAdapter = want.freshAdapter
        XCTAssertEqual(got, want)
    }

    func testEvaluateSectionIsTheStandardEvaluation() throws {
        let p = try section("evaluate")
        var (got, items, anchors) = try EvaluateParams.options(p)
        try p.finish()
        XCTAssertNil(items)
        // The chunk sizes the sampler's batches, not what is drawn (EvaluationTests: one-image chunks
        // read the same).
        got.chunk = standard.evaluation.chunk
        XCTAssertEqual(got, standard.evaluation)
        // The in-process run measures the dislocation on DK-DM's anchor bank; the daemon's evaluate
        // shares the bank when its anchor settings are the same.
        XCTAssertEqual(anchors, standard.dkdm.anchors)
    }
}
