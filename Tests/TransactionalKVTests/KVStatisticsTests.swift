// `KVStore.Statistics` counts each transaction once, under one heading (its doc comment). A transaction
// the store vetoed because it could not log it (the log full, the store closed) was counted nowhere.

import Foundation
import LogStore
import Synchronization
import Testing
import TransactionManager
@testable import TransactionalKV

@Suite("KV statistics")
struct KVStatisticsTests {
    static func total(_ s: KVStore.Statistics) -> Int {
        s.commits + s.singlePhaseCommits + s.conflicts + s.rollbacks + s.recoveredCommitted + s.recoveredAborted
    }

    @Test("a single-phase commit the full log refuses counts once, as a rollback", .hangGuard)
    func logFullVetoIsCounted() async throws {
        let w = try KVWorld(stores: 1, tag: "stats-full")
        defer { w.finish() }
        // A reservation keeps the rest of the log for itself: plain appends get log-full at once.
        let reservation = try w.log.createStream("reservation")
        let filler = try w.log.createStream("filler")
        try reservation.reserve(recordSizes: [Int](repeating: 0, count: 200))
        for size in [3000, 100, 0] {
            while true {
                do { _ = try filler.append([UInt8](repeating: 7, count: size)) } catch let e as LogError where e.code == .logFull { break }
            }
        }
        let tx = try w.tm.createTransaction()
        try w.a.begin(tx).put(b("k"), [UInt8](repeating: 1, count: 500))
        await #expect(throws: LogError.self) { try await tx.commit() }
        let stats = w.a.statistics
        #expect(Self.total(stats) == 1, "\(stats)")
        #expect(stats.rollbacks == 1, "\(stats)")
    }

    @Test("a prepare vetoed because the store closed counts once, as a rollback", .hangGuard)
    func closedVetoIsCounted() async throws {
        let w = try KVWorld(stores: 2, tag: "stats-closed")
        defer { w.finish() }
        try await KVCloseRaceTests.commitClosingStoreADuringItsPrepare(w)
        let stats = w.a.statistics
        #expect(Self.total(stats) == 1, "\(stats)")
        #expect(stats.rollbacks == 1, "\(stats)")
    }
}
