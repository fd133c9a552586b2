import Foundation
import XCTest
import EruDiff
import Models
@testable import Daemon
import RPCServer

/// The main job has one definition, a study (scripts/demo.json): `scripts/demo` sends its sections to
/// the daemon as the params of their methods, `erudiff-train refactor` reads them in process
/// (`RefactoringStudy`) with the same option tables. The two readers must accept every section of the
/// shipped studies and agree on what each asks for.
final class StudyTests: XCTestCase {
    private static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()
    static let studies = ["scripts/demo.json", "scripts/demo-small.json"]

    private func sections(_ path: String) throws -> [String: JSON] {
        let data = try Data(contentsOf: Self.root.appendingPathComponent(path))
        return try XCTUnwrap(JSON.parse(Array(data)).objectValue, "\(path) is not an object")
    }

    private func params(_ study: [String: JSON], _ name: String) throws -> Params {
        try Params(method: name, XCTUnwrap(study[name], "no \(name) section"))
    }

    func testTheDaemonReadsEachSectionAsTheInProcessRunDoes() throws {
        for path in Self.studies {
            let json = try sections(path)
            let study = try RefactoringStudy(contentsOf: Self.root.appendingPathComponent(path)).options

            let m = try params(json, "matchDistributions")
            XCTAssertEqual(try m.string("set"), study.dkdmSet, path)
            XCTAssertEqual(try MatchParams.options(m).0, study.dkdm, path)
            try m.finish()  // no member the daemon would reject

            if json["matchDistributionsOnPolicy"] != nil {
                let p = try params(json, "matchDistributionsOnPolicy")
                XCTAssertEqual(try p.string("set", default: "world:train"), study.dkdmSet, path)
                XCTAssertEqual(try MatchParams.options(p).0, study.dkdmOnPolicy, path)
                try p.finish()
            } else {
                XCTAssertNil(study.dkdmOnPolicy, path)
            }

            let r = try params(json, "rlStep")
            XCTAssertEqual(try r.string("set"), study.rlSet, path)
            XCTAssertEqual(try r.has("kinds") ? r.stringArray("kinds") : RLPrompt.defaultKinds.map(\.rawValue),
                           study.rlKinds.map(\.rawValue), path)
            XCTAssertEqual(try r.int("captions", default: 0, in: 0...10_000), study.rlCaptions, path)
            // Both continue the DK-DM adapter (freshAdapter false), so NO-RL's LoRA shape is never used;
            // the in-process run copies DK-DM's.
            XCTAssertEqual(try RLParams.options(r).0, study.norl, path)
            XCTAssertFalse(study.norl.freshAdapter, path)
            try r.finish()

            let e = try params(json, "evaluate")
            var (request, items) = try EvaluateParams.options(e)
            try e.finish()
            XCTAssertNil(items)
            // The chunk sizes the sampler's batches, not what is drawn (EvaluationTests: one-image
            // chunks read the same): the daemon's default is its own.
            request.options.chunk = study.evaluation.chunk
            XCTAssertEqual(request.options, study.evaluation, path)
            XCTAssertEqual(request.anchors, study.evaluationAnchors, path)
        }
    }

    /// The shipped study's evaluations measure the dislocation on DK-DM's anchors, so that one bank
    /// serves both (in the daemon and in process).
    func testTheMainStudySharesOneAnchorBank() throws {
        let study = try RefactoringStudy(contentsOf: Self.root.appendingPathComponent("scripts/demo.json")).options
        XCTAssertEqual(study.evaluationAnchors, study.dkdm.anchors)
    }

    /// A study's mistakes are named by their path.
    func testStudyErrorsNameTheOption() throws {
        let dir = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("study-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        for (text, name) in [(#"{"matchDistributions": {"keepPerStep": 2000}}"#, "\"matchDistributions.keepPerStep\""),
                             (#"{"rlStep": {"bogus": 1}}"#, "\"rlStep.bogus\""),
                             (#"{"evaluate": {"anchors": {"steps": "many"}}}"#, "\"evaluate.anchors.steps\""),
                             (#"{"matchDistributions": {"anchors": {"verify": true, "source": "policy"}}}"#, "\"anchors.verify\"")] {
            let url = dir.appendingPathComponent("s.json")
            try Data(text.utf8).write(to: url)
            XCTAssertThrowsError(try RefactoringStudy(contentsOf: url), text) { XCTAssertTrue("\($0)".contains(name), "\($0)") }
        }
    }
}
