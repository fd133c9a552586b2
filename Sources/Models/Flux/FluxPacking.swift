import Tensors

/// How images meet the transformer: channel-last images `[B, H, W, C]` (pixels in [−1, 1]) cut into
/// p×p patches, one token of C·p² channels each, in FLUX's `_pack_latents` order (see `Patchify`),
/// with FLUX's image ids `(0, row, col)` of the patch grid. 32×32 RGB with p = 4 gives 64 tokens of 48.
public struct FluxPacking: Equatable, Sendable {
    public let height: Int
    public let width: Int
    public let channels: Int
    public let patch: Int

    public init(height: Int, width: Int, channels: Int, patch: Int) throws {
        guard height > 0, width > 0, channels > 0, patch > 0 else {
            throw FluxError.invalidInput("image \(height)×\(width)×\(channels), patch \(patch): sizes must be positive")
        }
        guard height % patch == 0, width % patch == 0 else {
            throw FluxError.invalidInput("image \(height)×\(width) is not a whole number of \(patch)×\(patch) patches")
        }
        self.height = height; self.width = width; self.channels = channels; self.patch = patch
    }

    /// Patch-grid rows and columns.
    public var rows: Int { height / patch }
    public var cols: Int { width / patch }
    /// Tokens per image.
    public var tokens: Int { rows * cols }
    /// Channels per token, C·p².
    public var tokenChannels: Int { channels * patch * patch }
    /// Floats per image.
    public var pixelCount: Int { height * width * channels }

    /// Checks that a model of `config` reads and writes tokens of this packing.
    public func check(_ config: FluxConfig) throws {
        guard config.inChannels == tokenChannels else {
            throw FluxError.invalidConfig(source: "packing", problem: "in_channels \(config.inChannels) ≠ \(channels)·\(patch)² = \(tokenChannels)")
        }
        guard config.outFeatures == tokenChannels else {
            throw FluxError.invalidConfig(source: "packing", problem: "output features \(config.outFeatures) ≠ \(tokenChannels)")
        }
    }

    /// Tokens `[B, N, C·p²]` of images `[B, H, W, C]`.
    public func pack(_ images: Tensor) -> Tensor {
        let b = images.count / pixelCount
        precondition(b * pixelCount == images.count, "images of \(images.count) floats are not whole \(height)×\(width)×\(channels) images")
        let t = Tensor(zeros: [b, tokens, tokenChannels])
        Patchify.forward(image: images.data, tokens: t.data, batch: b, height: height, width: width,
                         channels: channels, patch: patch)
        return t
    }

    /// Images `[B, H, W, C]` of tokens `[B, N, C·p²]`.
    public func unpack(_ tokensTensor: Tensor) -> Tensor {
        let per = tokens * tokenChannels
        let b = tokensTensor.count / per
        precondition(b * per == tokensTensor.count, "tokens of \(tokensTensor.count) floats are not whole images")
        let img = Tensor(zeros: [b, height, width, channels])
        Unpatchify.forward(tokens: tokensTensor.data, image: img.data, batch: b, height: height, width: width,
                           channels: channels, patch: patch)
        return img
    }

    /// FLUX's position ids: `textTokens` zero ids, then `(0, row, col)` per image token.
    public func positions(textTokens: Int) -> FluxPositions {
        FluxPositions.standard(textTokens: textTokens, rows: rows, cols: cols)
    }
}
