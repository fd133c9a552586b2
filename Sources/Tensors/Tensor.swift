import Foundation

/// A dense, row-major float32 array.
///
/// Tensors are reference types: a model holds its parameters, gradients and scratch activations as
/// tensors allocated once, and hands their raw pointers to the kernels, which never allocate. A tensor
/// either owns 64-byte-aligned memory or borrows memory kept alive by `owner` (a memory-mapped
/// safetensors file, or another tensor it is a view of).
public final class Tensor: @unchecked Sendable {
    /// Extent of each axis, outermost first.
    public let shape: [Int]
    /// Number of elements (the product of `shape`).
    public let count: Int
    /// First element. Valid for `count` elements while the tensor is alive.
    public let data: UnsafeMutablePointer<Float>
    private let owner: AnyObject?
    private let owned: Bool

    /// A tensor of zeros.
    public init(zeros shape: [Int]) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative extent in shape \(shape)")
        self.shape = shape
        self.count = shape.reduce(1, *)
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * 4, alignment: 64)
        raw.initializeMemory(as: Float.self, repeating: 0, count: max(count, 1))
        self.data = raw.assumingMemoryBound(to: Float.self)
        self.owner = nil
        self.owned = true
    }

    /// A tensor holding a copy of `values`, which must have as many elements as `shape` implies.
    public convenience init(shape: [Int], values: [Float]) {
        self.init(zeros: shape)
        precondition(values.count == count, "\(values.count) values for shape \(shape)")
        values.withUnsafeBufferPointer { data.update(from: $0.baseAddress!, count: count) }
    }

    /// When this tensor borrows a memory-mapped file (a loaded weight), lets the system drop its resident
    /// pages; reading it again pages them back in from the file. For weights copied elsewhere (packed)
    /// and kept only as a fallback. Never for a tensor written in place since loading (its changes
    /// would be lost); no effect on tensors that own their memory.
    public func releaseMappedPages() {
        (owner as? MappedFile)?.releasePages(UnsafeRawPointer(data), byteCount: count * 4)
    }

    /// A tensor over memory that `owner` keeps alive (no copy).
    public init(borrowing pointer: UnsafeMutablePointer<Float>, shape: [Int], owner: AnyObject) {
        self.shape = shape
        self.count = shape.reduce(1, *)
        self.data = pointer
        self.owner = owner
        self.owned = false
    }

    deinit {
        if owned { UnsafeMutableRawPointer(data).deallocate() }
    }

    /// The same memory seen with another shape of equal element count.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        precondition(newShape.reduce(1, *) == count, "cannot reshape \(shape) to \(newShape)")
        return Tensor(borrowing: data, shape: newShape, owner: self)
    }

    /// A copy that owns its memory.
    public func copy() -> Tensor {
        let t = Tensor(zeros: shape)
        t.data.update(from: data, count: count)
        return t
    }

    /// The elements as a Swift array (a copy).
    public var array: [Float] { Array(UnsafeBufferPointer(start: data, count: count)) }

    /// Element `i` of the flattened tensor.
    @inlinable public subscript(i: Int) -> Float {
        get { data[i] }
        set { data[i] = newValue }
    }

    /// Sets every element to zero.
    public func zero() { data.update(repeating: 0, count: count) }

    /// An exponential moving average's update towards `other`: x ← d·x + (1 − d)·y.
    public func average(towards other: Tensor, decay d: Float) {
        for i in 0..<count { data[i] = d * data[i] + (1 - d) * other.data[i] }
    }

    /// Copies all elements of `other`, which must have the same element count.
    public func copy(from other: Tensor) {
        precondition(other.count == count, "copy of \(other.shape) into \(shape)")
        data.update(from: other.data, count: count)
    }

    /// Bytes of float32 storage this tensor addresses.
    public var byteCount: Int { count * MemoryLayout<Float>.size }

    /// Whether the memory is borrowed (memory-mapped file or view) rather than owned.
    public var isBorrowed: Bool { !owned }
}
