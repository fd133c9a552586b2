import Foundation
import Models
import Tensors
import XCTest

/// Image ↔ token packing and FLUX's position ids.
final class FluxPackingTests: XCTestCase {
    /// 32×32 RGB packs into 64 tokens of 48 channels in `_pack_latents` order and unpacks exactly.
    func testMiniPacking() throws {
        let p = try FluxPacking(height: 32, width: 32, channels: 3, patch: 4)
        XCTAssertEqual(p.tokens, 64)
        XCTAssertEqual(p.tokenChannels, 48)
        try p.check(.mini)
        var rng = RNG(seed: 1)
        let img = Tensor.uniform([2, 32, 32, 3], lo: -1, hi: 1, rng: &rng)
        let tok = p.pack(img)
        XCTAssertEqual(tok.shape, [2, 64, 48])
        // pixel (y, x, c) of image b → token (y/4)·8 + x/4, channel c·16 + (y%4)·4 + x%4
        let (b, y, x, c) = (1, 13, 22, 2)
        XCTAssertEqual(tok[(b * 64 + (y / 4) * 8 + x / 4) * 48 + c * 16 + (y % 4) * 4 + x % 4],
                       img[((b * 32 + y) * 32 + x) * 3 + c])
        XCTAssertEqual(p.unpack(tok).array, img.array)
    }

    /// Other sizes and patches: 2×2 packing of 32×32 gives 256 tokens of 12; ids are (0, row, col).
    func testOtherSizesAndIds() throws {
        let p = try FluxPacking(height: 16, width: 24, channels: 3, patch: 2)
        XCTAssertEqual(p.tokens, 96)
        let ids = p.positions(textTokens: 3)
        XCTAssertEqual(ids.text, [[0, 0, 0], [0, 0, 0], [0, 0, 0]])
        XCTAssertEqual(ids.image.count, 96)
        XCTAssertEqual(ids.image[13], [0, 1, 1])
        XCTAssertEqual(ids.image[95], [0, 7, 11])
        XCTAssertEqual(try FluxPacking(height: 32, width: 32, channels: 3, patch: 2).tokens, 256)
        XCTAssertThrowsError(try FluxPacking(height: 30, width: 32, channels: 3, patch: 4))
        XCTAssertThrowsError(try FluxPacking(height: 32, width: 32, channels: 3, patch: 2).check(.mini))
    }
}
