import XCTest
@testable import RPCServer

/// Typed parameter reading: errors name the parameter, nested members by their path.
final class ParamsTests: XCTestCase {
    func testNestedParamsNameTheirMembers() throws {
        let p = try Params(method: "toy/train", JSON.parse(#"{"anchors": {"perPair": 0, "x": 1}, "lora": 3}"#))
        let a = try XCTUnwrap(p.nested("anchors"))
        XCTAssertThrowsError(try a.int("perPair", in: 1...256)) {
            XCTAssertTrue(($0 as! RPCError).message.contains("\"anchors.perPair\" must be an integer in 1...256, got 0"))
        }
        XCTAssertThrowsError(try a.finish()) {
            XCTAssertTrue(($0 as! RPCError).message.contains("unknown parameter \"anchors.x\""), "\($0)")
        }
        XCTAssertThrowsError(try p.nested("lora")) {
            XCTAssertTrue(($0 as! RPCError).message.contains("\"lora\" must be an object, got 3"))
        }
        XCTAssertNil(try p.nested("replay"))
    }
}
