import Foundation

/// erudiff's own settings of a model, beside diffusers' `config.json` in `erudiff.json` (diffusers
/// ignores the file): the image format the tokens pack, the text length, and the sampling shift.
///
///     {"image_size": 32, "image_channels": 3, "patch": 4, "text_tokens": 32, "shift": 1.0}
public struct FluxPipelineConfig: Equatable, Sendable {
    /// Square images of this side, in pixels.
    public var imageSize: Int
    public var imageChannels: Int
    /// Packing patch side (4 for the `mini` model: 32×32 → 8×8 tokens).
    public var patch: Int
    /// Text tokens per prompt (the text encoder's max length, pads included).
    public var textTokens: Int
    /// Static timestep shift of the sampling schedule (1 = none).
    public var shift: Float

    public init(imageSize: Int = 32, imageChannels: Int = 3, patch: Int = 4, textTokens: Int = 32, shift: Float = 1) {
        self.imageSize = imageSize; self.imageChannels = imageChannels; self.patch = patch
        self.textTokens = textTokens; self.shift = shift
    }

    public static let fileName = "erudiff.json"

    /// The packing these settings describe.
    public func packing() throws -> FluxPacking {
        try FluxPacking(height: imageSize, width: imageSize, channels: imageChannels, patch: patch)
    }

    public init(contentsOf url: URL) throws {
        let o = try FluxJSON.read(url)
        func int(_ k: String, _ d: Int) throws -> Int {
            guard let v = o[k] else { return d }
            guard let n = v as? NSNumber, n.doubleValue == n.doubleValue.rounded(), n.intValue > 0 else {
                throw FluxError.invalidConfig(source: url.path, problem: "'\(k)' must be a positive integer")
            }
            return n.intValue
        }
        let shift: Float
        if let v = o["shift"] {
            guard let n = v as? NSNumber, n.doubleValue > 0 else {
                throw FluxError.invalidConfig(source: url.path, problem: "'shift' must be a positive number")
            }
            shift = n.floatValue
        } else {
            shift = 1
        }
        self.init(imageSize: try int("image_size", 32), imageChannels: try int("image_channels", 3),
                  patch: try int("patch", 4), textTokens: try int("text_tokens", 32), shift: shift)
    }

    public func write(to url: URL) throws {
        try FluxJSON.write(["image_size": imageSize, "image_channels": imageChannels, "patch": patch,
                            "text_tokens": textTokens, "shift": Double(shift)], to: url)
    }
}
