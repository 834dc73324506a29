// PosixFileIO is public: an offset or size beyond the system's file offsets, or a path with a NUL byte,
// from its caller is an error.

import Foundation
import Testing
import TxLogTestSupport
@testable import LogStore

@Suite struct PosixFileIOArgumentTests {
    /// `pread`, `pwritev` and `truncate` converted a `UInt64` offset or size to `off_t` (Int64) and trapped
    /// above `Int64.max`. They throw `invalidArgument` now, and the file is left as it was.
    @Test(arguments: [UInt64(Int64.max) + 1, UInt64.max])
    func offsetsBeyondOffTAreInvalidArguments(_ offset: UInt64) throws {
        let dir = NSTemporaryDirectory() + "txlog-offsets-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let io = PosixFileIO()
        let fd = try io.open(dir + "/file", mode: .createExclusive)
        defer { io.close(fd) }
        try io.writeAll(fd, [1, 2, 3, 4], at: 0)
        var buffer = [UInt8](repeating: 0, count: 4)
        expectLogError(.invalidArgument) { _ = try buffer.withUnsafeMutableBytes { try io.pread(fd, into: $0, at: offset) } }
        expectLogError(.invalidArgument) { _ = try buffer.withUnsafeMutableBytes { try io.readFully(fd, into: $0, at: offset) } }
        expectLogError(.invalidArgument) { _ = try buffer.withUnsafeBytes { try io.pwritev(fd, [$0], at: offset) } }
        expectLogError(.invalidArgument) { try io.truncate(fd, to: offset) }
        #expect(try io.fileSize(fd) == 4)
        #expect(try buffer.withUnsafeMutableBytes { try io.readFully(fd, into: $0, at: 0) } == 4 && buffer == [1, 2, 3, 4])
    }

    /// A path reaches the system as a C string, which ends at the first NUL: `LogStore.create(at: "x/log\0b")`
    /// created and used `x/log`, and every call on such a path named another file. A path with a NUL byte is
    /// `invalidArgument` (and no such file exists), and nothing is created.
    @Test func pathsWithANulByteAreInvalidArguments() throws {
        let dir = NSTemporaryDirectory() + "txlog-nul-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let io = PosixFileIO()
        expectLogError(.invalidArgument) { _ = try LogStore.create(at: dir + "/log\u{0}tail") }
        #expect(!FileManager.default.fileExists(atPath: dir + "/log"))
        expectLogError(.invalidArgument) { _ = try io.open(dir + "/f\u{0}x", mode: .createExclusive) }
        #expect(!FileManager.default.fileExists(atPath: dir + "/f"))
        expectLogError(.invalidArgument) { try io.makeDirectory(dir + "/d\u{0}x") }
        #expect(!FileManager.default.fileExists(atPath: dir + "/d"))
        #expect(!io.fileExists(dir + "\u{0}x"))
        expectLogError(.invalidArgument) { _ = try io.listDirectory(dir + "\u{0}x") }
        expectLogError(.invalidArgument) { try io.fsyncDirectory(dir + "\u{0}x") }
        _ = FileManager.default.createFile(atPath: dir + "/kept", contents: Data([1]))
        expectLogError(.invalidArgument) { try io.unlink(dir + "/kept\u{0}x") }
        expectLogError(.invalidArgument) { try io.rename(dir + "/kept\u{0}x", dir + "/moved") }
        expectLogError(.invalidArgument) { try io.rename(dir + "/kept", dir + "/kept\u{0}x") }
        #expect(FileManager.default.fileExists(atPath: dir + "/kept"))
    }
}
