#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// A whole file mapped into memory, private and copy-on-write.
///
/// Mapped readable *and* writable with `MAP_PRIVATE`: tensors borrowed from the mapping may be changed
/// in place (merging a LoRA adapter into base weights, say) and the changed pages become private
/// copies; the file on disk is never touched. The mapping lives as long as this object, which tensors
/// borrowing from it keep alive as their owner. If another process truncates the file while it is
/// mapped, reading the lost pages raises SIGBUS; that is the price of zero-copy loading.
final class MappedFile: @unchecked Sendable {
    /// First byte of the file.
    let base: UnsafeMutableRawPointer
    /// Size of the file in bytes.
    let size: Int

    /// Maps the regular file at `path`; `fail` turns a problem description into the error to throw.
    init(path: String, fail: (String) -> Error) throws {
        // Non-blocking: a FIFO at the path must fail the regular-file check below, not block in open().
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        if fd < 0 { throw fail("cannot open: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var st = stat()
        if fstat(fd, &st) != 0 { throw fail("cannot stat: \(String(cString: strerror(errno)))") }
        if (st.st_mode & S_IFMT) != S_IFREG { throw fail("not a regular file") }
        let size = Int(st.st_size)
        if size == 0 {
            // mmap refuses empty files; keep a valid base pointer for the (tiny) size-check path.
            self.base = UnsafeMutableRawPointer.allocate(byteCount: 1, alignment: 8)
            self.size = 0
            self.isMapped = false
            return
        }
        let p = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0)
        if p == MAP_FAILED || p == nil {
            throw fail("cannot map \(size) bytes: \(String(cString: strerror(errno)))")
        }
        self.base = p!
        self.size = size
        self.isMapped = true
    }

    private let isMapped: Bool

    deinit {
        if isMapped { munmap(base, size) } else { base.deallocate() }
    }

    /// Drops the resident pages wholly inside `[start, start + count)` (MADV_DONTNEED); touching them
    /// again reads them back from the file. Pages written since mapping would lose their changes, so
    /// callers use it only for ranges never written.
    func releasePages(_ start: UnsafeRawPointer, byteCount count: Int) {
        guard isMapped, contains(start), count > 0 else { return }
        let page = UInt(sysconf(Int32(_SC_PAGESIZE)))
        let lo = (UInt(bitPattern: start) + page - 1) / page * page
        let hi = (UInt(bitPattern: start) + UInt(count)) / page * page
        guard hi > lo, let p = UnsafeMutableRawPointer(bitPattern: lo) else { return }
        _ = madvise(p, Int(hi - lo), Int32(MADV_DONTNEED))
    }

    /// Whether `pointer` lies inside the mapping.
    func contains(_ pointer: UnsafeRawPointer) -> Bool {
        let p = UInt(bitPattern: pointer), b = UInt(bitPattern: UnsafeRawPointer(base))
        return p >= b && p < b + UInt(size)
    }
}
