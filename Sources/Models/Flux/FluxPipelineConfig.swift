import Foundation

/// What the transformer's output stands for — a pipeline convention, not part of the architecture
/// (diffusers' FLUX math is the same either way).
public enum PredictionTarget: String, Codable, CaseIterable, Sendable {
    /// The flow velocity ε − x0 (FLUX, SD3).
    case velocity
    /// The clean image x0 (JiT, Li & He 2025): the velocity is derived as (x_t − x̂0) / max(t, t_min),
    /// and the loss stays in velocity space.
    case sample
}

/// erudiff's own settings of a model, beside diffusers' `config.json` in `erudiff.json` (diffusers
/// ignores the file): the image format the tokens pack, the text length, the sampling shift and what
/// the network predicts.
///
///     {"image_size": 32, "image_channels": 3, "patch": 4, "text_tokens": 32, "shift": 1.0,
///      "prediction": "velocity"}
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
    /// What the network's output is (velocity when the file does not say).
    public var prediction: PredictionTarget

    public init(imageSize: Int = 32, imageChannels: Int = 3, patch: Int = 4, textTokens: Int = 32, shift: Float = 1,
                prediction: PredictionTarget = .velocity) {
        self.imageSize = imageSize; self.imageChannels = imageChannels; self.patch = patch
        self.textTokens = textTokens; self.shift = shift; self.prediction = prediction
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
        var prediction = PredictionTarget.velocity
        if let v = o["prediction"] {
            guard let s = v as? String, let p = PredictionTarget(rawValue: s) else {
                let names = PredictionTarget.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: " or ")
                throw FluxError.invalidConfig(source: url.path, problem: "'prediction' must be \(names)")
            }
            prediction = p
        }
        self.init(imageSize: try int("image_size", 32), imageChannels: try int("image_channels", 3),
                  patch: try int("patch", 4), textTokens: try int("text_tokens", 32), shift: shift,
                  prediction: prediction)
    }

    public func write(to url: URL) throws {
        var o: [String: Any] = ["image_size": imageSize, "image_channels": imageChannels, "patch": patch,
                                "text_tokens": textTokens, "shift": Double(shift)]
        if prediction != .velocity { o["prediction"] = prediction.rawValue }
        try FluxJSON.write(o, to: url)
    }
}
