/// What the world's functions throw: each case names the problem and, where there is one, the file.
public enum WorldError: Error, CustomStringConvertible, Equatable {
    /// An image whose pixel buffer does not match its width and height.
    case badImage(String)
    /// The verifier was given an image of a size it does not read.
    case unsupportedSize(width: Int, height: Int)
    /// libpng refused to encode or decode (its message), with the file when there is one.
    case png(String, path: String?)
    /// Reading or writing a file failed.
    case io(String, path: String)

    public var description: String {
        switch self {
        case let .badImage(m): return "bad image: \(m)"
        case let .unsupportedSize(w, h): return "the verifier reads 32×32 images, not \(w)×\(h)"
        case let .png(m, path): return "PNG error\(path.map { " in \($0)" } ?? ""): \(m)"
        case let .io(m, path): return "\(path): \(m)"
        }
    }
}
