// `LogStream.writeRestartArea(_:coveredThrough:usingReservation:)`: the base moves to the restart
// record itself when no record of the stream lies between the LSN the restart area covers and it, else
// to that LSN. With `newBase`, a stream whose last record in the oldest container was its previous
// restart area kept pinning that container after a checkpoint (docs/RELIABILITY.md, "Found by the
// fourteenth review (mine: ...)").

import Foundation
import Testing
import TxLogTestSupport
@testable import LogStore

@Suite("Restart areas covering a stream's records through an LSN")
struct RestartAreaCoveredThroughTests {
    static func withLog(_ tag: String, containers: Int = 3, _ body: (LogStore, String) throws -> Void) throws {
        let dir = FaultTestKit.temporaryPath(tag)
        defer { FaultTestKit.remove(dir) }
        let log = try LogStore.create(at: dir, options: uncompressedTiny(containers))
        defer { try? log.close() }
        try body(log, dir)
    }

    @Test func baseMovesToTheRestartRecordWhenNothingCameAfter() throws {
        try Self.withLog("covered-nothing-after") { log, _ in
            let s = try log.createStream("s")
            let other = try log.createStream("other")
            _ = try s.append([1])
            let covered = try s.append([2])
            _ = try other.append([3])  // another stream's record between: it does not count
            let restart = try s.writeRestartArea([9, 9], coveredThrough: covered)
            #expect(s.baseLSN == restart)
            #expect(try s.readRestartArea()?.lsn == restart)
            // Read from the covered LSN as recovery does: the records after it, the restart area first.
            var cursor = try s.records(from: covered)
            var seen: [LSN] = []
            while let r = try cursor.next() { seen.append(r.lsn) }
            #expect(seen.last == restart)
        }
    }

    @Test func baseMovesOnlyToTheCoveredLSNWhenARecordOfTheStreamCameAfter() throws {
        try Self.withLog("covered-record-after") { log, _ in
            let s = try log.createStream("s")
            let covered = try s.append([1])
            let after = try s.append([2])  // not covered: the base must not pass it
            let restart = try s.writeRestartArea([9], coveredThrough: covered)
            #expect(s.baseLSN == covered)
            #expect(s.baseLSN < after && after < restart)
        }
    }

    @Test func emptyStreamCoveredThroughNull() throws {
        try Self.withLog("covered-null") { log, _ in
            let s = try log.createStream("s")
            let restart = try s.writeRestartArea([7], coveredThrough: .null)
            #expect(s.baseLSN == restart)
            // A second one with nothing new moves the base on to it, never backwards.
            let second = try s.writeRestartArea([8], coveredThrough: restart)
            #expect(s.baseLSN == second)
            _ = try s.writeRestartArea([8], coveredThrough: .null)
            #expect(s.baseLSN >= second)
        }
    }

    @Test func badCoveredLSNsAreInvalidArgument() throws {
        try Self.withLog("covered-bad") { log, _ in
            let s = try log.createStream("s")
            let r = try s.append([1])
            let last = s.lastLSN
            expectLogError(.invalidArgument) { _ = try s.writeRestartArea([1], coveredThrough: LSN(uncheckedContainer: r.container + 5, blockOffset: 4096, slot: 0)) }
            // Above the base, it must name a record.
            expectLogError(.invalidArgument) { _ = try s.writeRestartArea([1], coveredThrough: LSN(uncheckedContainer: r.container, blockOffset: r.blockOffset, slot: 40)) }
            #expect(s.lastLSN == last, "a refused restart area appended nothing")
            #expect(try s.readRestartArea() == nil)
        }
    }

    /// The base (the restart record) and the restart area survive a reopen.
    @Test func survivesReopen() throws {
        let dir = FaultTestKit.temporaryPath("covered-reopen")
        defer { FaultTestKit.remove(dir) }
        let restart: LSN
        do {
            let log = try LogStore.create(at: dir, options: uncompressedTiny(2))
            let s = try log.createStream("s")
            let covered = try s.append([1, 2, 3])
            restart = try s.writeRestartArea([4], coveredThrough: covered)
            try log.close()
        }
        let log = try LogStore.open(at: dir)
        defer { try? log.close() }
        let s = try log.openStream("s")
        #expect(s.baseLSN == restart)
        #expect(try s.readRestartArea()?.data == [4])
    }

    /// A stream whose only record in the first container is its restart area leaves that container with
    /// one checkpoint; with `newBase` (the last record before the new restart area: the old restart area)
    /// its base stayed there.
    @Test func oneCheckpointUnpinsTheOldestContainer() throws {
        for covering in [true, false] {
            try Self.withLog("covered-unpins-\(covering)", containers: 3) { log, _ in
                let ckpt = try log.createStream("ckpt")
                _ = try ckpt.writeRestartArea([1], coveredThrough: .null)
                let first = ckpt.lastLSN
                // The default stream fills the first container and moves on; it never pins anything.
                let big = [UInt8](repeating: 0x11, count: 100_000)
                while log.info().lastLSN.container == first.container {
                    let l = try log.append(big)
                    try log.advanceBase(to: l)
                }
                if covering {
                    _ = try ckpt.writeRestartArea([2], coveredThrough: ckpt.lastLSN)
                } else {
                    _ = try ckpt.writeRestartArea([2], newBase: ckpt.lastLSN)
                }
                // With `newBase` the base could reach no further than the previous restart area, in the
                // first container, which it kept from recycling.
                #expect(covering ? ckpt.baseLSN.container > first.container : ckpt.baseLSN == first, "covering: \(covering), base \(ckpt.baseLSN)")
            }
        }
    }
}
