/// An 8-bit RGB image, rows top to bottom, three bytes per pixel: what PNG files hold and what a
/// person looks at. The model's input and output are float images in [-1, 1] (HWC); this type
/// converts both ways.
public struct RGBImage: Hashable, Sendable {
    public let width: Int
    public let height: Int
    /// Interleaved R, G, B bytes, `width * height * 3` of them.
    public var pixels: [UInt8]

    /// An image over existing bytes; throws if their count is not `width * height * 3`.
    public init(width: Int, height: Int, pixels: [UInt8]) throws {
        guard width > 0, height > 0 else { throw WorldError.badImage("size \(width)×\(height)") }
        guard pixels.count == width * height * 3 else {
            throw WorldError.badImage("\(pixels.count) bytes for \(width)×\(height) RGB (need \(width * height * 3))")
        }
        self.width = width; self.height = height; self.pixels = pixels
    }

    /// An image of one colour.
    public init(width: Int, height: Int, fill: SIMD3<UInt8> = SIMD3(255, 255, 255)) {
        precondition(width > 0 && height > 0, "image size \(width)×\(height)")
        self.width = width; self.height = height
        var p = [UInt8](repeating: 0, count: width * height * 3)
        for i in 0..<(width * height) { p[3 * i] = fill.x; p[3 * i + 1] = fill.y; p[3 * i + 2] = fill.z }
        pixels = p
    }

    /// An image from floats in [-1, 1], HWC (the model's scale); values outside are clamped, and NaN
    /// (a model whose weights went bad) becomes 0 rather than a trap.
    public init(signedUnit p: UnsafePointer<Float>, width: Int, height: Int) {
        precondition(width > 0 && height > 0, "image size \(width)×\(height)")
        self.width = width; self.height = height
        let n = width * height * 3
        pixels = [UInt8](unsafeUninitializedCapacity: n) { buf, count in
            for i in 0..<n {
                let v = (p[i] + 1) * 127.5
                buf[i] = v.isNaN ? 0 : UInt8(min(max(v, 0), 255).rounded())
            }
            count = n
        }
    }

    /// Writes the image as floats in [-1, 1], HWC, into `out` (`width * height * 3` floats).
    public func writeSignedUnit(into out: UnsafeMutablePointer<Float>) {
        for i in 0..<pixels.count { out[i] = Float(pixels[i]) / 127.5 - 1 }
    }

    /// The pixel at column `x`, row `y`.
    public subscript(x: Int, y: Int) -> SIMD3<UInt8> {
        get {
            let i = 3 * (y * width + x)
            return SIMD3(pixels[i], pixels[i + 1], pixels[i + 2])
        }
        set {
            let i = 3 * (y * width + x)
            pixels[i] = newValue.x; pixels[i + 1] = newValue.y; pixels[i + 2] = newValue.z
        }
    }
}
