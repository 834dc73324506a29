// A stream's life: visible only once durable, never reused after a crash, unreadable once deleted, and
// its restart area only ever moving forward.

import Foundation
import Testing
@testable import LogStore

@Suite struct StreamLifecycleTests {
    /// While createStream writes the base file, the stream cannot be opened or listed. Before, it could
    /// be opened and written; a crash then forgot the stream, the next createStream reused its id, and
    /// the new stream read the old one's records as its own.
    @Test func aStreamIsNotOpenableUntilItIsDurable() throws {
        let dir = StreamTestDirectory()
        let image = dir.path + "-crash"
        defer { try? FileManager.default.removeItem(atPath: image) }
        let io = ParkingIO(parkAt: .baseWrite)
        let log = try LogStore.create(at: dir.path, options: streamTestOptions(), io: io)
        try log.flush(upTo: try log.append(Array("default".utf8)))
        io.arm()
        let created = LockedBox<UInt16?>(nil)
        let creator = Thread { created.withLock { $0 = try? log.createStream("ghost").id } }
        creator.start()
        io.entered.wait()  // createStream is writing the base file
        #expect(throws: LogError.self) { _ = try log.openStream("ghost") }
        #expect(!log.streams().contains { $0.name == "ghost" })
        #expect(throws: LogError.self) { _ = try log.createStream("ghost") }  // the name is taken meanwhile
        try LogTestKit.snapshot(dir.path, to: image)  // a crash now: the base file never named it
        io.release.signal()
        while !creator.isFinished { usleep(1000) }
        #expect(created.snapshot != nil)
        #expect(try log.openStream("ghost").id == created.snapshot)
        try log.close()

        let reopened = try LogStore.open(at: image)
        defer { try? reopened.close() }
        #expect(throws: LogError.self) { _ = try reopened.openStream("ghost") }
        let fresh = try reopened.createStream("fresh")
        var cursor = try fresh.records()
        #expect(try cursor.next() == nil, "a new stream reads nothing")
    }

    /// A deleted stream's handle no longer reads its records (the documented rule); before, `read` and
    /// a cursor from an explicit LSN still returned them.
    @Test func aDeletedStreamIsUnreadable() throws {
        let dir = StreamTestDirectory()
        let log = try LogStore.create(at: dir.path, options: streamTestOptions())
        defer { try? log.close() }
        let s = try log.createStream("gone")
        let lsn = try s.append(Array("secret".utf8))
        try log.flush()
        try log.deleteStream("gone")
        expectLogError(.notFound) { _ = try s.read(lsn) }
        expectLogError(.notFound) { _ = try s.records(from: lsn) }
        expectLogError(.notFound) { _ = try s.records() }
    }

    /// Restart areas written from many threads at once: the one in force is always the newest, and it
    /// never goes back. Before, whichever flush returned last won.
    @Test func concurrentRestartAreasOnlyMoveForward() throws {
        let dir = StreamTestDirectory()
        let log = try LogStore.create(at: dir.path, options: streamTestOptions(containers: 8))
        defer { try? log.close() }
        let s = try log.createStream("ckpt")
        let written = LockedBox<[LSN]>([])
        let backwards = LockedBox(0)
        let stop = LockedBox(false)
        let monitor = Thread {
            var seen = LSN.null
            while !stop.snapshot {
                guard let now = try? s.info().restartLSN else { continue }
                if now < seen { backwards.withLock { $0 += 1 } }
                seen = max(seen, now)
            }
        }
        monitor.start()
        let writers = (0..<8).map { t in
            Thread {
                for i in 0..<100 {
                    if let lsn = try? s.writeRestartArea(Array("t\(t)-\(i)".utf8)) { written.withLock { $0.append(lsn) } }
                }
            }
        }
        for w in writers { w.start() }
        while writers.contains(where: { !$0.isFinished }) { usleep(2000) }
        stop.withLock { $0 = true }
        while !monitor.isFinished { usleep(1000) }
        #expect(written.snapshot.count == 800)
        #expect(backwards.snapshot == 0, "the restart area went back \(backwards.snapshot) times")
        #expect(try s.info().restartLSN == written.snapshot.max())
        #expect(try s.readRestartArea()?.lsn == written.snapshot.max())
    }
}
