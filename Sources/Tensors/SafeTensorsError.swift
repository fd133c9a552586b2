import Foundation

/// A safetensors file that cannot be read, or tensors that cannot be written.
///
/// Every problem with a file — truncation, a header length past the end, invalid JSON, an unknown
/// dtype, offsets out of range, overlapping or leaving holes, a shape that disagrees with the byte
/// count — is one of these, naming the file and the exact problem; reading never crashes and never
/// returns a silently wrong tensor. `kind` lets callers and tests tell the problems apart.
public struct SafeTensorsError: Error, CustomStringConvertible, LocalizedError, Sendable {
    /// What went wrong, coarsely.
    public enum Kind: String, Sendable {
        /// The file could not be opened, inspected or mapped.
        case io
        /// The file is shorter than the 8-byte header length.
        case truncated
        /// The header length runs past the end of the file, is absurdly large, or is too small.
        case headerLength
        /// The header is not UTF-8 or does not begin with `{`.
        case headerEncoding
        /// The header is not valid JSON, not an object, or repeats a key.
        case invalidJSON
        /// A tensor entry lacks `dtype`, `shape` or `data_offsets`, or has values of the wrong type.
        case invalidEntry
        /// A dtype string the safetensors format does not define.
        case unknownDType
        /// `data_offsets` reversed or outside the data section.
        case offsets
        /// Two tensors share bytes.
        case overlap
        /// Bytes of the data section that no tensor covers (the format forbids holes).
        case gap
        /// The byte count disagrees with shape × dtype size, or that product overflows.
        case byteCount
        /// `__metadata__` is not an object of strings to strings.
        case metadata
        /// No tensor of that name.
        case notFound
        /// A valid dtype that does not convert to float32 here (only F32, F16 and BF16 do).
        case unsupportedDType
        /// Tensors handed to `write` that cannot be stored (duplicate or reserved names, NUL characters).
        case invalidArgument
    }

    /// The file concerned.
    public let path: String
    /// What went wrong, coarsely.
    public let kind: Kind
    /// What went wrong, precisely.
    public let problem: String

    public init(path: String, kind: Kind, problem: String) {
        self.path = path
        self.kind = kind
        self.problem = problem
    }

    public var description: String { "safetensors file \(path): \(problem)" }
    public var errorDescription: String? { description }
}
