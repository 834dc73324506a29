// Plain appends while a reservation is in force (a transaction manager and each key-value store keep one
// for their next restart area, so every TM or KV log has one). Each such append asks whether it leaves the
// space the reservations need, and that answer counted the free containers, a walk of every container
// under the log's lock, twice per record (docs/PERFORMANCE.md, "Hot paths after the fifteenth review").

import Testing
@testable import LogStore

@Suite("Hot paths: plain appends under a reservation")
struct HotPathReservationTests {
    @Test("plain appends under a reservation do not count the free containers per record")
    func plainAppendsDoNotWalkTheContainers() throws {
        let dir = LogTestKit.temporaryPath("reserved-appends")
        defer { LogTestKit.remove(dir) }
        let log = try LogStore.create(at: dir, options: LogTestKit.options(containerSize: 4 << 20, containerCount: 8, blockSize: 64 * 1024, codec: .none))
        defer { try? log.close() }
        let restart = try log.createStream("restart")
        try restart.reserve(recordSizes: [4096])
        let data = try log.createStream("data")
        let counted = LockedBox(0)
        log.core.freeContainersCountedForTesting = { counted.withLock { $0 += 1 } }
        // 200 records of 100 bytes fill less than one 64 KiB block: no seal, no batch, no container switch.
        let record = [UInt8](repeating: 7, count: 100)
        for _ in 0..<200 { try data.append(record) }
        log.core.freeContainersCountedForTesting = nil
        // Before: two counts per append (400 here). Nothing else running counts them in this log.
        #expect(counted.snapshot == 0)
    }

    @Test("the bound without a count answers as the full check, through every container's end")
    func boundAgreesWithTheFullCheck() throws {
        let dir = LogTestKit.temporaryPath("reserved-bound")
        defer { LogTestKit.remove(dir) }
        let log = try LogStore.create(at: dir, options: LogTestKit.options(containerSize: 1 << 20, containerCount: 4, blockSize: 8192, codec: .none))
        defer { try? log.close() }
        let restart = try log.createStream("restart")
        try restart.reserve(recordSizes: [2000, 30_000])
        let data = try log.createStream("data")
        let core = log.core
        var disagreements: [String] = []
        var refused = false
        for i in 0..<4000 where !refused {
            let size = 200 + (i * 37) % 3000
            let mismatch = core.lock.withLock { () -> String? in
                for cost in [core.reservationCost(size), core.reservationCost(60_000), 1, 0] {
                    let full = core.freeBytesLocked() - core.tailLostLocked(cost: cost) - cost >= core.reservationFloorLocked()
                    if core.clearsReservationFloorLocked(cost: cost) != full { return "record \(i), cost \(cost): full check says \(full)" }
                }
                return nil
            }
            if let mismatch { disagreements.append(mismatch) }
            do { try data.append([UInt8](repeating: 1, count: size)) } catch let e as LogError where e.code == .logFull { refused = true }
        }
        #expect(disagreements.isEmpty)
        // The walk went through the last free container up to the reservations' floor.
        #expect(refused)
    }
}
