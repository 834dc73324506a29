// A `prepare` record with no decision after it, followed in the stream by the `prepare` of a transaction
// still in doubt that writes the same key. A nearly full log leaves such records: a store appends its
// `prepare`, then cannot reserve room for the outcome record and votes no, and no `abort` follows.

import Foundation
import LogStore
import Testing
import TransactionManager
@testable import TransactionalKV

@Suite struct KVStalePrepareTests {
    /// `prepare` records in the stream of `store` with no `commit` or `abort` after them.
    static func undecidedPrepares(_ store: KVStore) throws -> Int {
        var open: Set<GUID> = []
        var cursor = try store.stream.records(from: .null)
        while let r = try cursor.next() {
            if r.type == .restart { continue }
            switch try KVRecord.decode(r.data) {
            case .prepare(let t, _): open.insert(t)
            case .commit(let t), .abort(let t): open.remove(t)
            default: break
            }
        }
        return open.count
    }

    /// Recovery locked each pending transaction's keys in dictionary order, so a key written by both a
    /// vetoed prepare and the in-doubt transaction went to whichever came last; the vetoed one, presumed
    /// aborted, then unlocked the in-doubt transaction's key, and another transaction wrote it.
    @Test(.hangGuard) func vetoedPreparesDoNotUnlockTheInDoubtTransactionsKey() async throws {
        let w = try KVWorld(stores: 2, tag: "stale-prepare")
        defer { w.finish() }
        let filler = try w.log.createStream("filler")
        // Round after round (each adds a container): fill the log, then try transactions writing k in
        // store a (and j in b) as the last bytes go. Some of them get store a's prepare record in and no
        // room for its outcome: vetoed, no abort.
        // A reservation the log cannot hold goes through the log-full path. Nothing may make room there:
        // its flush seals the open block, and sealing compressible records gave back the room they took in
        // it (the prepares then committed), so the filler's records do not compress; and the checkpoints
        // the TM's and the stores' tail-pinned handlers write there would take the last bytes the prepare
        // records are to get, so there are none while the log is kept full (the reopen registers them).
        // Each seal there also pads the block, so a round leaves fewer such records than before: the
        // rounds go on until there are ten.
        for info in w.log.info().streams { try (info.id == 0 ? w.log.defaultStream : w.log.openStream(info.name)).onTailPinned(nil) }
        // Nor may the rooms the TM and the stores hold for their next checkpoints (CheckpointRoomTests)
        // raise the floor plain appends stop at: a prepare record refused by it has its block sealed and
        // padded, which jumps over the few hundred bytes where a prepare gets in and its outcome's
        // reservation does not.
        w.dropCheckpointRooms()
        var rng = SystemRandomNumberGenerator()
        let incompressible = (0..<3000).map { _ in UInt8.random(in: 0...255, using: &rng) }
        var rounds = 0
        while try Self.undecidedPrepares(w.a) < 10, rounds < 12 {
            rounds += 1
            while (try? filler.append(incompressible)) != nil {}
            for _ in 0..<40 {
                let tx = try w.tm.createTransaction()
                try w.a.begin(tx).put(b("k"), b("vetoed"))
                try w.b.begin(tx).put(b("j"), b("vetoed"))
                await expectLogError(.logFull) { try await tx.commit() }
                _ = try? filler.append([])
            }
            _ = try w.log.addContainer()
        }
        let stale = try Self.undecidedPrepares(w.a)
        #expect(stale >= 10, "\(stale) vetoed prepare records: the test did not set up what it checks")
        let superior = try await w.preparedUnderASuperior()  // k = p in store a, in doubt
        try w.crashAndReopen()
        #expect(w.a.inDoubtTransactions == [superior.transactionID])
        let writer = try w.tm.createTransaction()
        try w.a.begin(writer).put(b("k"), b("overwrite"))
        await expectLogError(.conflict, "a write to the in-doubt transaction's key") { try await writer.commit() }
        #expect(w.a.get(b("k")) == nil)
        // The superior decides commit: its write is applied.
        try await w.tm.resolve(superior.transactionID, action: .commit)
        #expect(s(w.a.get(b("k"))) == "p")
    }
}
