// A metadata change whose base-file write fails is not in force: the log is failed by then (sticky), but
// its reads still work, and they showed the change as made. `advanceBase`, `createStream` and
// `deleteStream` already took theirs back; `writeRestartArea` and `setArchiveTail` did not, so
// `readRestartArea` returned an area the base file never named (a reopen finds the previous one), and
// `info()` a base and an archive tail that were never written.

import Foundation
import Testing
import TxLogTestSupport
@testable import LogStore

@Suite("metadata changes whose base-file write fails")
struct MetadataUndoTests {
    /// A log whose next base-file write fails with EIO (the parked write is released at once).
    static func logFailingNextBaseWrite(_ tag: String) throws -> (log: LogStore, io: ParkingIO, dir: String) {
        let dir = FaultTestKit.temporaryPath(tag)
        let io = ParkingIO(parkAt: .baseWrite, failAfterRelease: true)
        return (try LogStore.create(at: dir, options: FaultTestKit.tinyOptions(), io: io), io, dir)
    }

    @Test("writeRestartArea: the restart area and base in force stay the old ones, as a reopen finds them")
    func restartAreaTakenBack() throws {
        let (log, io, dir) = try Self.logFailingNextBaseWrite("restart-undo")
        defer { FaultTestKit.remove(dir) }
        let stream = try log.createStream("s")
        let a = try stream.append([1])
        let first = try stream.writeRestartArea([0xAA], newBase: a)
        let b = try stream.append([2])
        io.release.signal()
        io.arm()
        #expect(throws: LogError.self) { _ = try stream.writeRestartArea([0xBB], newBase: b) }
        #expect(log.isFailed)
        #expect(try stream.readRestartArea()?.lsn == first)
        #expect(stream.baseLSN == a)
        try? log.close()
        let reopened = try LogStore.open(at: dir)
        defer { try? reopened.close() }
        let again = try reopened.openStream("s")
        #expect(try again.readRestartArea()?.lsn == first)
        #expect(again.baseLSN == a)
    }

    @Test("setArchiveTail (of a stream, and of the log): the tail in force stays the old one")
    func archiveTailTakenBack() throws {
        for ofStream in [true, false] {
            let (log, io, dir) = try Self.logFailingNextBaseWrite("tail-undo")
            defer { FaultTestKit.remove(dir) }
            let stream = try log.createStream("s")
            let a = try stream.append([1])
            let b = try stream.append([2])
            try log.flush(upTo: b)
            let set: (LSN) throws -> Void = ofStream ? { try stream.setArchiveTail($0) } : { try log.setArchiveTail($0) }
            let tail: () throws -> LSN = ofStream ? { try stream.info().archiveTail } : { log.info().archiveTail }
            try set(a)
            io.release.signal()
            io.arm()
            #expect(throws: LogError.self) { try set(b) }
            #expect(log.isFailed)
            #expect(try tail() == a, "of the stream: \(ofStream)")
            try? log.close()
        }
    }
}
