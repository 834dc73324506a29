// The TM's virtual clock is a u64 read back from its checkpoint and records (docs/format/tm-records.md):
// a stream may carry its largest value. A commit decision then must not trap on `clock += 1`.

import Foundation
import LogStore
import Testing
@testable import TransactionManager

@Suite struct ClockLimitTests {
    @Test("a TM whose checkpoint carries clock 2^64 − 1 commits (the clock stays at its largest), never traps")
    func commitAtTheLastClockValue() async throws {
        let dir = TMScratch("clock-limit")
        defer { dir.remove() }
        let log = try LogStore.create(at: dir.path, options: TMScratch.options)
        let id = GUID.random()
        let stream = try log.createStream(TransactionManager.defaultStreamName)
        let cp = TMCheckpoint(tm: id, coveredThrough: .null, clock: .max, rms: [], transactions: [])
        try stream.writeRestartArea(TMRecord.checkpoint(cp).encode(clock: .max))
        let tm = try TransactionManager.open(log: log)
        try tm.recover()
        #expect(tm.virtualClock == .max)
        let tx = try tm.createTransaction(description: "at the end of time")
        try await tx.commit()
        #expect(tx.outcome == .committed)
        #expect(tm.virtualClock == .max)
        try tm.close()
        try log.close()
    }
}
