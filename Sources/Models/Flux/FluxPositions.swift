import Foundation
import Tensors

/// Position ids of the joint sequence, three axes per token as in FLUX: text tokens first, then image
/// tokens. FLUX's convention is text ids all zero and image id `(0, row, col)` of the token's patch.
public struct FluxPositions: Equatable, Sendable {
    /// `[L][3]`: one id triple per text token.
    public var text: [[Float]]
    /// `[N][3]`: one id triple per image token, in token order.
    public var image: [[Float]]

    public init(text: [[Float]], image: [[Float]]) {
        self.text = text
        self.image = image
    }

    /// FLUX's ids for `textTokens` text tokens and a `rows`×`cols` grid of image tokens (row-major).
    public static func standard(textTokens: Int, rows: Int, cols: Int) -> FluxPositions {
        let text = [[Float]](repeating: [0, 0, 0], count: textTokens)
        var image: [[Float]] = []
        image.reserveCapacity(rows * cols)
        for r in 0..<rows { for c in 0..<cols { image.append([0, Float(r), Float(c)]) } }
        return FluxPositions(text: text, image: image)
    }

    public var textTokens: Int { text.count }
    public var imageTokens: Int { image.count }
}

/// The rotary tables of one joint sequence: for token t and rotary pair i, cos and sin of the angle
/// `id[t, axis]·θ^(−2j/d_axis)` (θ = 10000), pairs of each axis in turn (diffusers' `FluxPosEmbed`,
/// computed in double precision like diffusers, stored as float). `[T, headDim/2]` each, plus −sin for
/// the inverse rotation of backward.
public final class FluxRope {
    public let tokens: Int
    public let pairs: Int
    public let cos: Tensor
    public let sin: Tensor
    public let negSin: Tensor

    public init(positions: FluxPositions, axesDims: [Int], theta: Double = 10000) throws {
        let ids = positions.text + positions.image
        for (t, id) in ids.enumerated() where id.count != axesDims.count {
            throw FluxError.invalidInput("position id of token \(t) has \(id.count) axes, the config has \(axesDims.count)")
        }
        let pairs = axesDims.reduce(0, +) / 2
        var c = [Float](repeating: 0, count: ids.count * pairs), s = c
        for (t, id) in ids.enumerated() {
            var k = 0
            for (axis, dim) in axesDims.enumerated() {
                let pos = Double(id[axis])
                for j in 0..<(dim / 2) {
                    let freq = 1.0 / Foundation.pow(theta, Double(2 * j) / Double(dim))
                    let angle = pos * freq
                    c[t * pairs + k] = Float(Foundation.cos(angle))
                    s[t * pairs + k] = Float(Foundation.sin(angle))
                    k += 1
                }
            }
        }
        self.tokens = ids.count
        self.pairs = pairs
        self.cos = Tensor(shape: [ids.count, pairs], values: c)
        self.sin = Tensor(shape: [ids.count, pairs], values: s)
        self.negSin = Tensor(shape: [ids.count, pairs], values: s.map { -$0 })
    }
}
