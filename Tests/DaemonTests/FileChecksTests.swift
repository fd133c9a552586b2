import Foundation
import XCTest
@testable import Daemon
import RPCServer
import World

/// Issue 35: what the daemon may read and write at a path a client names.
final class FileChecksTests: XCTestCase {
    var dir = ""

    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "filechecks-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: dir)
    }

    private func message(_ body: () throws -> Void) -> String {
        do { try body() } catch { return "\(error)" }
        return ""
    }

    func testReadsOnlyRegularFiles() throws {
        let fifo = dir + "/f"
        XCTAssertEqual(mkfifo(fifo, 0o600), 0)
        let start = Date()
        XCTAssertTrue(message { try FileChecks.readable(fifo) }.contains("is not a regular file (it is a FIFO)"))
        XCTAssertTrue(message { try FileChecks.readable(dir) }.contains("a directory"))
        XCTAssertTrue(message { try FileChecks.readable("/dev/null") }.contains("a character device"))
        XCTAssertTrue(message { try FileChecks.readable(dir + "/none") }.contains("cannot be read"))
        XCTAssertNil(FileChecks.head(fifo, limit: 10), "opened non-blocking: no wait for a writer")
        XCTAssertLessThan(Date().timeIntervalSince(start), 1)
        FileManager.default.createFile(atPath: dir + "/r", contents: Data("abc".utf8))
        XCTAssertNoThrow(try FileChecks.readable(dir + "/r"))
        XCTAssertEqual(try FileChecks.contents(dir + "/r", name: "p", limit: 2), Array("ab".utf8))
    }

    func testWritesRefuseLinksSpecialFilesDotDotAndForeignFiles() throws {
        let text = dir + "/notes.txt"
        FileManager.default.createFile(atPath: text, contents: Data("mine".utf8))
        XCTAssertTrue(message { try FileChecks.writable(text, kind: .adapter, overwrite: false) }.contains("\"overwrite\": true"))
        XCTAssertNoThrow(try FileChecks.writable(text, kind: .adapter, overwrite: true))
        XCTAssertNoThrow(try FileChecks.writable(dir + "/new.png", kind: .png, overwrite: false))
        try FileManager.default.createSymbolicLink(atPath: dir + "/link", withDestinationPath: text)
        XCTAssertTrue(message { try FileChecks.writable(dir + "/link", kind: .png, overwrite: true) }.contains("symbolic link"))
        XCTAssertEqual(mkfifo(dir + "/fifo", 0o600), 0)
        for path in [dir + "/fifo", dir, "/dev/null"] {
            XCTAssertTrue(message { try FileChecks.writable(path, kind: .adapter, overwrite: true) }.contains("not a regular file"), path)
        }
        XCTAssertTrue(message { try FileChecks.writable(dir + "/a/../b.png", kind: .png, overwrite: true) }.contains("'..'"))
    }

    func testRecognisesItsOwnPNGs() throws {
        let png = try PNG.encode(RGBImage(width: 3, height: 2))
        let marked = PNGText.adding(key: "Software", value: FileChecks.pngSoftware, to: png)
        XCTAssertEqual(PNGText.text(in: marked, key: "Software"), "erudiffd")
        XCTAssertNil(PNGText.text(in: png, key: "Software"))
        XCTAssertEqual(try PNG.decode(marked), try PNG.decode(png), "libpng reads the marked file (its CRC is right)")
        XCTAssertEqual(PNGText.crc32(Array("IEND".utf8)), 0xAE42_6082)
        FileManager.default.createFile(atPath: dir + "/ours.png", contents: Data(marked))
        FileManager.default.createFile(atPath: dir + "/theirs.png", contents: Data(png))
        XCTAssertNoThrow(try FileChecks.writable(dir + "/ours.png", kind: .png, overwrite: false))
        XCTAssertTrue(message { try FileChecks.writable(dir + "/theirs.png", kind: .png, overwrite: false) }.contains("not a PNG written by erudiff"))
    }
}
