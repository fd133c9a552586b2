import Foundation

#if _endian(big)
#error("safetensors data is little-endian; this reader maps it as native floats")
#endif

/// A safetensors file opened for reading: memory-mapped, its header parsed and fully validated.
///
/// Opening checks everything the format promises (see `SafeTensorsHeader`): a damaged file is a
/// `SafeTensorsError` naming the file and the problem, before any tensor is handed out. F32 tensors
/// come back without a copy, borrowing the mapping (which they keep alive, so the `SafeTensors` object
/// itself may go away first); the mapping is private and writable, so changing such a tensor in place
/// copies the touched pages and never changes the file. F16 and BF16 are widened to float32 exactly;
/// other dtypes are listed and validated but not converted.
public final class SafeTensors: @unchecked Sendable {
    /// One tensor as the header describes it.
    public struct Entry: Sendable, Equatable {
        /// The tensor's name (the header key).
        public let name: String
        /// The stored element type.
        public let dtype: SafeTensorsDType
        /// Extent of each axis, outermost first (`[]` is a scalar).
        public let shape: [Int]
        /// Number of elements, the product of `shape`.
        public let count: Int
        /// Where the bytes lie, relative to the start of the data section.
        public let byteRange: Range<Int>
    }

    /// The file read.
    public let url: URL
    /// The `__metadata__` strings (empty when the file has none).
    public let metadata: [String: String]
    /// Tensor names, sorted by their UTF-8 bytes.
    public let names: [String]
    /// Every tensor's description, by name.
    public let entries: [String: Entry]
    /// Offset of the data section in the file: 8 + the header length.
    public let dataOffset: Int

    private let mapping: MappedFile

    /// Opens, maps and validates the safetensors file at `url`.
    public init(contentsOf url: URL) throws {
        let path = url.path
        func fail(_ kind: SafeTensorsError.Kind, _ problem: String) -> SafeTensorsError {
            SafeTensorsError(path: path, kind: kind, problem: problem)
        }
        let mapping = try MappedFile(path: path) { fail(.io, $0) }
        let size = mapping.size
        if size < 8 {
            throw fail(.truncated, "file has \(size) bytes, fewer than the 8-byte header length")
        }
        let n = UInt64(littleEndian: mapping.base.loadUnaligned(as: UInt64.self))
        if n > UInt64(SafeTensorsHeader.maxLength) {
            throw fail(.headerLength, "header length \(n) is absurd (more than \(SafeTensorsHeader.maxLength) bytes)")
        }
        if n > UInt64(size - 8) {
            throw fail(.headerLength, "header length \(n) runs past the end of the \(size)-byte file")
        }
        let headerLength = Int(n)
        let dataOffset = 8 + headerLength
        let parsed = try SafeTensorsHeader.parse(UnsafeRawBufferPointer(start: mapping.base + 8, count: headerLength),
                                                 dataLength: size - dataOffset, fail: fail)
        var entries: [String: Entry] = [:]
        for e in parsed.entries {
            if let other = entries[e.name] {
                throw fail(.invalidJSON, "tensor names '\(other.name)' and '\(e.name)' are the same Unicode string")
            }
            entries[e.name] = e
        }
        self.url = url
        self.metadata = parsed.metadata
        self.entries = entries
        self.names = entries.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        self.dataOffset = dataOffset
        self.mapping = mapping
    }

    /// Whether the file holds a tensor called `name`.
    public func contains(_ name: String) -> Bool { entries[name] != nil }

    /// The tensor called `name` as float32: F32 borrowed from the mapping when 4-byte aligned (copied
    /// otherwise), F16 and BF16 widened into a new tensor. Other dtypes and unknown names throw.
    public func tensor(named name: String) throws -> Tensor {
        guard let e = entries[name] else {
            throw SafeTensorsError(path: url.path, kind: .notFound, problem: "no tensor named '\(name)'")
        }
        let src = UnsafeRawPointer(mapping.base + dataOffset + e.byteRange.lowerBound)
        if e.count == 0 && e.dtype.convertsToFloat32 { return Tensor(zeros: e.shape) }
        switch e.dtype {
        case .F32:
            if Int(bitPattern: src) % MemoryLayout<Float>.alignment == 0 {
                let p = UnsafeMutableRawPointer(mutating: src).bindMemory(to: Float.self, capacity: e.count)
                return Tensor(borrowing: p, shape: e.shape, owner: mapping)
            }
            let t = Tensor(zeros: e.shape)
            UnsafeMutableRawPointer(t.data).copyMemory(from: src, byteCount: e.byteRange.count)
            return t
        case .F16:
            let t = Tensor(zeros: e.shape)
            HalfPrecision.f16ToF32(src, t.data, count: e.count)
            return t
        case .BF16:
            let t = Tensor(zeros: e.shape)
            HalfPrecision.bf16ToF32(src, t.data, count: e.count)
            return t
        default:
            throw SafeTensorsError(path: url.path, kind: .unsupportedDType,
                                   problem: "tensor '\(name)' has dtype \(e.dtype.rawValue); only F32, F16 and BF16 convert to float32")
        }
    }

    /// Every tensor, by name (fails on the first dtype that does not convert).
    public func allTensors() throws -> [String: Tensor] {
        var result: [String: Tensor] = [:]
        for name in names { result[name] = try tensor(named: name) }
        return result
    }

    /// Whether `tensor`'s memory lies inside this file's mapping (a zero-copy tensor).
    public func isMapped(_ tensor: Tensor) -> Bool { mapping.contains(UnsafeRawPointer(tensor.data)) }
}
