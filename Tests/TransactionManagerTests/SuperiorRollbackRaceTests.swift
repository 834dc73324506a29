// A superior's rollback racing its own prepare: once the transaction is prepared in memory its
// prepared record is being appended, and a rollback let in then could log its abort and end records
// before that prepared record, which recovery took for a new in-doubt transaction (resurrected after
// every participant had rolled back).

import Foundation
import LogStore
import Synchronization
import Testing
@testable import TransactionManager

@Suite struct SuperiorRollbackRaceTests {
    /// The TM records of `id`, in log order, as kinds.
    static func kinds(of id: GUID, in tm: TransactionManager) throws -> [TMRecord.Kind] {
        try tmRecords(tm).filter { r in
            switch r {
            case .prepared(let t), .outcome(let t): t.id == id
            case .end(let e): e == id
            default: false
            }
        }.map(\.kind)
    }

    /// The log's writer is held while a block waits for it, and the log takes no unwritten bytes
    /// (`maxDirtyBytes` 0), so the prepared record's append waits with the transaction already prepared
    /// in memory. A superior rollback made then must not get its records in first.
    @Test func rollbackWhileThePreparedRecordWaitsComesAfterIt() async throws {
        let scratch = TMScratch("sup-race")
        defer { scratch.remove() }
        let gate = GateIO(holding: .writes)
        var open = LogOpenOptions()
        open.groupCommit.maxDirtyBytes = 0
        let log = try LogStore.create(at: scratch.path, options: LogCreateOptions(containerSize: 8 << 20, containerCount: 2, blockSize: 8192),
                                      openOptions: open, io: gate)
        defer { try? log.close() }
        let tm = try TransactionManager.create(log: log)
        try tm.recover()
        // Answers without writing records of its own (they would wait for the writer too).
        let rm = try tm.createResourceManager(description: "answers", handler: answerAtOnce)
        try rm.recover()
        let filler = try log.createStream("filler")
        var resurrected = 0
        for round in 0..<12 {
            let tx = try tm.createTransaction()
            _ = try rm.enlist(tx)
            let superior = try tx.enlistSuperior()
            gate.close()
            // Seals a block the writer cannot write: from now on appends wait for it.
            let sealed = DispatchSemaphore(value: 0)
            DispatchQueue.global().async {
                for _ in 0..<12 { _ = try? filler.append([UInt8](repeating: UInt8(round), count: 1000)) }
                sealed.signal()
            }
            let preparing = Task(executorPreference: OwnThreadExecutor()) { try await superior.prepare() }
            #expect(await eventually { superior.state == .prepared })
            // The rollback, on another thread: refused while the prepared record is in flight, it is
            // retried once the prepare returned; let in, it waits for the writer like the prepared record.
            let rolledBack = DispatchSemaphore(value: 0)
            DispatchQueue.global().async {
                for _ in 0..<20000 {
                    do {
                        try superior.rollback()
                        break
                    } catch { usleep(500) }
                }
                rolledBack.signal()
            }
            try? await Task.sleep(for: .milliseconds(20))
            gate.open()
            _ = try? await preparing.value
            await waitOffPool(rolledBack)
            await waitOffPool(sealed)
            // A rollback thread starved past its retries (a loaded machine) leaves the round unraced.
            if superior.state == .prepared { try superior.rollback() }
            #expect(await superior.waitForOutcome() == .aborted)
            let kinds = try Self.kinds(of: tx.id, in: tm)
            if kinds.first != .prepared { resurrected += 1 }
            #expect(kinds.first == .prepared, "round \(round): records of \(tx.id): \(kinds)")
        }
        #expect(resurrected == 0)
        // After a crash none of them comes back in doubt.
        try log.close()
        let (log2, tm2) = try scratch.reopenOnline()
        defer { try? log2.close() }
        #expect(tm2.inDoubtTransactions().isEmpty)
        #expect(tm2.lastRecovery.inDoubt == 0)
        withExtendedLifetime(rm) {}
    }

    func waitOffPool(_ s: DispatchSemaphore) async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            DispatchQueue.global().async {
                s.wait()
                c.resume()
            }
        }
    }
}

