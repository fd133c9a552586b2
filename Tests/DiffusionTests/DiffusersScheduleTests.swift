import Diffusion
import Foundation
import XCTest

/// Schedules and the Euler step against diffusers' FlowMatchEulerDiscreteScheduler
/// (Fixtures/flux-schedules.json, written by scripts/make-flux-fixture.py).
final class DiffusersScheduleTests: XCTestCase {
    func fixture() throws -> [String: Any] {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("Fixtures/flux-schedules.json")
        return try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
    }

    func floats(_ v: Any?) -> [Float] { (v as! [NSNumber]).map { $0.floatValue } }

    func testStaticShiftSchedules() throws {
        for case let s as [String: Any] in try fixture()["static"] as! [Any] {
            let steps = (s["steps"] as! NSNumber).intValue, shift = (s["shift"] as! NSNumber).floatValue
            let ours = TimestepSchedule(steps: steps, shift: .fixed(shift)).sigmas, ref = floats(s["sigmas"])
            XCTAssertEqual(ours.count, ref.count)
            for (a, b) in zip(ours, ref) { XCTAssertEqual(a, b, accuracy: 1e-6, "steps \(steps) shift \(shift)") }
        }
    }

    func testDynamicShiftSchedules() throws {
        for case let s as [String: Any] in try fixture()["dynamic"] as! [Any] {
            let steps = (s["steps"] as! NSNumber).intValue, tokens = (s["image_tokens"] as! NSNumber).intValue
            let mu = TimestepSchedule.mu(imageTokens: tokens)
            XCTAssertEqual(mu, (s["mu"] as! NSNumber).floatValue, accuracy: 1e-6)
            let ours = TimestepSchedule(steps: steps, shift: .dynamic(mu: mu)).sigmas, ref = floats(s["sigmas"])
            XCTAssertEqual(ours.count, ref.count)
            for (a, b) in zip(ours, ref) { XCTAssertEqual(a, b, accuracy: 1e-6, "steps \(steps) tokens \(tokens)") }
        }
    }

    func testEulerStepMatchesScheduler() throws {
        let e = try fixture()["euler"] as! [String: Any]
        let schedule = TimestepSchedule(steps: (e["steps"] as! NSNumber).intValue,
                                        shift: .fixed((e["shift"] as! NSNumber).floatValue))
        let i = (e["index"] as! NSNumber).intValue
        var x = floats(e["x"]), v = floats(e["v"])
        SamplerStep.euler(x: &x, velocity: &v, sigma: schedule.sigmas[i], sigmaNext: schedule.sigmas[i + 1], count: x.count)
        for (a, b) in zip(x, floats(e["next"])) { XCTAssertEqual(a, b, accuracy: 1e-6) }
    }
}
