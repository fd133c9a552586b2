import CPNG
import Foundation

/// PNG files through libpng's simplified API (which reports errors in a status field instead of
/// jumping out of the caller), so bad data or a bad path becomes a thrown `WorldError`, never a crash.
public enum PNG {
    /// Largest image `decode` accepts, in pixels (guards against absurd headers).
    public static let maxPixels = 1 << 26

    /// The PNG encoding of `image` (8-bit RGB).
    public static func encode(_ image: RGBImage) throws -> [UInt8] {
        var img = png_image()
        img.version = png_uint_32(PNG_IMAGE_VERSION)
        img.width = png_uint_32(image.width)
        img.height = png_uint_32(image.height)
        img.format = png_uint_32(PNG_FORMAT_FLAG_COLOR)
        let stride = png_int_32(image.width * 3)
        var size: png_alloc_size_t = 0
        let ok = image.pixels.withUnsafeBytes { px in
            png_image_write_to_memory(&img, nil, &size, 0, px.baseAddress, stride, nil)
        }
        guard ok != 0, size > 0 else { throw WorldError.png(message(&img), path: nil) }
        var out = [UInt8](repeating: 0, count: Int(size))
        let ok2 = out.withUnsafeMutableBytes { o in
            image.pixels.withUnsafeBytes { px in
                png_image_write_to_memory(&img, o.baseAddress, &size, 0, px.baseAddress, stride, nil)
            }
        }
        guard ok2 != 0 else { throw WorldError.png(message(&img), path: nil) }
        out.removeSubrange(Int(size)...)
        return out
    }

    /// Decodes PNG bytes of any colour type and bit depth into 8-bit RGB (alpha is composited onto
    /// black, grayscale expanded). `path` only names the source in errors.
    public static func decode(_ data: [UInt8], path: String? = nil) throws -> RGBImage {
        guard !data.isEmpty else { throw WorldError.png("empty data", path: path) }
        var img = png_image()
        img.version = png_uint_32(PNG_IMAGE_VERSION)
        let begun = data.withUnsafeBytes { d in
            png_image_begin_read_from_memory(&img, d.baseAddress, d.count)
        }
        guard begun != 0 else { throw WorldError.png(message(&img), path: path) }
        let w = Int(img.width), h = Int(img.height)
        guard w > 0, h > 0, w * h <= maxPixels else {
            png_image_free(&img)
            throw WorldError.png("image size \(w)×\(h) out of range", path: path)
        }
        img.format = png_uint_32(PNG_FORMAT_FLAG_COLOR)
        var pixels = [UInt8](repeating: 0, count: w * h * 3)
        let done = pixels.withUnsafeMutableBytes { p in
            png_image_finish_read(&img, nil, p.baseAddress, png_int_32(w * 3), nil)
        }
        guard done != 0 else { throw WorldError.png(message(&img), path: path) }
        return try RGBImage(width: w, height: h, pixels: pixels)
    }

    /// Writes `image` as a PNG file at `path` (atomically: a temporary file renamed into place).
    public static func write(_ image: RGBImage, to path: String) throws {
        let bytes = try encode(image)
        do {
            try Data(bytes).write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw WorldError.io("cannot write PNG: \(error.localizedDescription)", path: path)
        }
    }

    /// Reads the PNG file at `path` as 8-bit RGB.
    public static func read(_ path: String) throws -> RGBImage {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw WorldError.io("cannot read PNG: \(error.localizedDescription)", path: path)
        }
        return try decode([UInt8](data), path: path)
    }

    /// libpng's message for the last failure of `img`.
    private static func message(_ img: inout png_image) -> String {
        let text = withUnsafeBytes(of: &img.message) { raw -> String in
            let bytes = raw.prefix(while: { $0 != 0 })
            return String(decoding: bytes, as: UTF8.self)
        }
        return text.isEmpty ? "libpng failed without a message" : text
    }
}
