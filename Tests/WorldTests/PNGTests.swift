import Foundation
import Tensors
import XCTest
@testable import World

final class PNGTests: XCTestCase {
    let dir = NSTemporaryDirectory() + "world-png-\(getpid())"

    override func setUp() { try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    func testRenderRoundTripsThroughLibpng() throws {
        var rng = RNG(seed: 5)
        for _ in 0..<20 {
            let (_, image) = Renderer.image(Caption.random(&rng).attributes, rng: &rng)
            let bytes = try PNG.encode(image)
            XCTAssertEqual(Array(bytes.prefix(8)), [137, 80, 78, 71, 13, 10, 26, 10])
            XCTAssertEqual(try PNG.decode(bytes), image)
        }
        let (_, image) = Renderer.image(Attributes(shape: .heart, color: .red), rng: &rng)
        let path = dir + "/heart.png"
        try PNG.write(image, to: path)
        XCTAssertEqual(try PNG.read(path), image)
    }

    func testOddSizesAndAllByteValuesRoundTrip() throws {
        let pixels = (0..<(7 * 3 * 3)).map { UInt8(($0 * 37) % 256) }
        let image = try RGBImage(width: 7, height: 3, pixels: pixels)
        XCTAssertEqual(try PNG.decode(try PNG.encode(image)), image)
    }

    func testBadInputThrowsInsteadOfCrashing() {
        XCTAssertThrowsError(try PNG.decode([]))
        XCTAssertThrowsError(try PNG.decode([UInt8](repeating: 7, count: 100)))
        var truncated = try! PNG.encode(RGBImage(width: 32, height: 32, fill: SIMD3(1, 2, 3)))
        truncated.removeLast(truncated.count / 2)
        XCTAssertThrowsError(try PNG.decode(truncated))
        XCTAssertThrowsError(try PNG.read(dir + "/missing.png")) { error in
            XCTAssert("\(error)".contains("missing.png"), "\(error)")
        }
        XCTAssertThrowsError(try PNG.write(RGBImage(width: 2, height: 2), to: dir + "/no/such/dir/x.png"))
        XCTAssertThrowsError(try RGBImage(width: 2, height: 2, pixels: [1, 2, 3]))
    }

    func testFloatConversionRoundTrips() throws {
        let pixels = (0..<(4 * 4 * 3)).map { UInt8(($0 * 53) % 256) }
        let image = try RGBImage(width: 4, height: 4, pixels: pixels)
        var f = [Float](repeating: 0, count: 48)
        f.withUnsafeMutableBufferPointer { image.writeSignedUnit(into: $0.baseAddress!) }
        XCTAssert(f.allSatisfy { (-1...1).contains($0) })
        XCTAssertEqual(f.withUnsafeBufferPointer { RGBImage(signedUnit: $0.baseAddress!, width: 4, height: 4) }, image)
    }

    /// Issue 35: a model whose weights went bad (NaN) must not trap the process when its image is
    /// written: NaN becomes 0, infinities clamp.
    func testNonFiniteFloatsBecomeBytesWithoutATrap() throws {
        var f: [Float] = [.nan, .infinity, -.infinity, 0, -.nan, 2, -3, .signalingNaN, 1, 0.5, -1, .greatestFiniteMagnitude]
        let image = f.withUnsafeMutableBufferPointer { RGBImage(signedUnit: $0.baseAddress!, width: 2, height: 2) }
        XCTAssertEqual(image.pixels, [0, 255, 0, 128, 0, 255, 0, 0, 255, 191, 0, 255])
        XCTAssertNoThrow(try PNG.encode(image))
    }

    func testLabelledGridLayout() throws {
        let a = RGBImage(width: 32, height: 32, fill: SIMD3(255, 0, 0))
        let b = RGBImage(width: 32, height: 32, fill: SIMD3(0, 0, 255))
        let grid = ImageGrid(rows: [[a, b], [b, a]], rowLabels: ["implicit", "explicit"],
                             columnLabels: ["the flag of japan", "a stop sign"], scale: 3)
        let sheet = try grid.render()
        let path = dir + "/grid.png"
        try grid.write(to: path)
        XCTAssertEqual(try PNG.read(path), sheet)
        // Images are upscaled 3× with nearest neighbour: a 96×96 block of one colour each.
        var red = 0, blue = 0, ink = 0
        for y in 0..<sheet.height {
            for x in 0..<sheet.width {
                switch sheet[x, y] {
                case SIMD3(255, 0, 0): red += 1
                case SIMD3(0, 0, 255): blue += 1
                case SIMD3(20, 20, 20): ink += 1
                default: break
                }
            }
        }
        XCTAssertEqual(red, 2 * 96 * 96)
        XCTAssertEqual(blue, 2 * 96 * 96)
        XCTAssertGreaterThan(ink, 200)   // labels were drawn
        XCTAssertThrowsError(try ImageGrid(rows: []).render())
    }

    func testFontGlyphsAreFiveBySeven() {
        for ch in "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,:;'\"-_!?()[]/+=%#*<>" {
            let rows = BitmapFont.rows(ch)
            XCTAssertEqual(rows.count, 7, String(ch))
            XCTAssert(rows.allSatisfy { $0 < 32 }, String(ch))
        }
        XCTAssertEqual(BitmapFont.rows("a"), BitmapFont.rows("A"))
        XCTAssertEqual(BitmapFont.rows("é"), BitmapFont.rows("?"))
    }
}
