// A store's tail-pinned handler on a log that stays full: the checkpoint it schedules cannot append its
// records either, and that failed append must not schedule another checkpoint (and so on for as long as
// the log is full: a checkpoint loop writing a snapshot file each turn).

import Foundation
import LogStore
import Synchronization
import Testing
import TransactionManager
@testable import TransactionalKV

@Suite struct KVTailPinnedCheckpointLoopTests {
    /// Before the fix each checkpoint the handler ran on its dispatch thread found the log full, its append
    /// called the tail-pinned handlers again, and the store scheduled the next checkpoint: while the log
    /// stayed full, checkpoints ran back to back without end.
    @Test(.hangGuard) func aFullLogDoesNotLoopCheckpoints() async throws {
        let world = try KVWorld(stores: 1, tag: "cp-loop")
        defer { world.finish() }
        // A transaction prepared here and left undecided by its superior: its prepare record keeps the
        // store's stream in the oldest container, and a checkpoint must append it again (100 KB).
        let tx = try world.tm.createTransaction()
        try world.a.begin(tx).put(b("big"), [UInt8](repeating: 0x42, count: 100_000))
        let superior = try tx.enlistSuperior()
        #expect(try await superior.prepare() == .prepared)
        // Fill the log with another stream until even small records are refused.
        let filler = try world.log.createStream("filler")
        for size in [3000, 100] {
            while true {
                do { _ = try filler.append([UInt8](repeating: 7, count: size)) } catch let e as LogError where e.code == .logFull { break }
            }
        }
        // Let the checkpoints the refusals scheduled run (each one fails: the log is full).
        func attempts() -> UInt64 { world.a.lock.withLock { world.a.snapshotGeneration } }
        try await Task.sleep(for: .milliseconds(300))
        let settled = attempts()
        try await Task.sleep(for: .milliseconds(500))
        let later = attempts()
        #expect(later - settled <= 1, "\(later &- settled) checkpoints were tried with nothing appended meanwhile (\(later) in all)")
        try superior.rollback()
    }
}
