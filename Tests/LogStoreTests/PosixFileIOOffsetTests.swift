// PosixFileIO is public: an offset or size from its caller beyond the system's file offsets is an error.

import Foundation
import Testing
import TxLogTestSupport
@testable import LogStore

@Suite struct PosixFileIOOffsetTests {
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
}
