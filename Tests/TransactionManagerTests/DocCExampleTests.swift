// The example of the TransactionManager DocC catalogue's overview
// (Sources/TransactionManager/TransactionManager.docc/TransactionManager.md), against the public API (plain
// imports). Keep the two in step. Differences, marked: a temporary directory and small containers, and a
// count of the notifications where the catalogue has comments.

import Foundation
import LogStore
import Synchronization
import Testing
import TransactionManager

@Suite struct DocCExampleTests {
    @Test func transactionManagerOverview() async throws {
        let root = NSTemporaryDirectory() + "/txlog-docc-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let seen = Mutex<[TransactionNotification.Kind]>([])

        // --- TransactionManager.docc: Overview ---
        let log = try LogStore.create(at: root + "/log", options: LogCreateOptions(containerSize: 1 << 20, containerCount: 2))
        let tm = try TransactionManager.create(log: log)
        try tm.recover()
        let rm = try tm.createResourceManager(description: "accounts") { note in
            seen.withLock { $0.append(note.kind) }  // (not in the catalogue)
            guard let e = note.enlistment else { return }
            switch note.kind {
            case .prePrepare: try? e.prePrepareComplete()
            case .prepare: /* append a prepare record to rm.stream */ try? e.prepareComplete()
            case .commit: /* apply */ try? e.commitComplete()
            case .rollback: /* undo */ try? e.rollbackComplete()
            case .recover: try? e.recover()
            default: break
            }
        }
        try rm.recover()
        let tx = try tm.createTransaction(description: "transfer", timeout: .seconds(5))
        _ = try rm.enlist(tx, mask: .twoPhase)
        try await tx.commit()

        #expect(tx.outcome == .committed)
        #expect(seen.withLock { $0 }.filter { $0 != .tmOnline && $0 != .recoveryComplete } == [.prePrepare, .prepare, .commit])
        rm.close()
        try tm.close()
        try log.close()
    }
}
