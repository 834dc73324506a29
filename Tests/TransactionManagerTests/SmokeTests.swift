import Foundation
import Testing
@testable import TransactionManager
import LogStore

@Suite struct SmokeTests {
    @Test func guidRoundTrip() {
        let g = GUID.random()
        #expect(GUID(g.description) == g)
    }

    @Test func twoPhaseCommitOneFlush() async throws {
        let dir = NSTemporaryDirectory() + "/tm-smoke-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let log = try LogStore.create(at: dir, options: LogCreateOptions(containerSize: 1 << 20, containerCount: 2, blockSize: 8192))
        let tm = try TransactionManager.create(log: log)
        try tm.recover()
        let box = RMBox()
        let rm1 = try tm.createResourceManager(description: "a") { box.handle($0) }
        let rm2 = try tm.createResourceManager(description: "b") { box.handle($0) }
        box.streams = [rm1.id: rm1.stream!, rm2.id: rm2.stream!]
        try rm1.recover()
        try rm2.recover()
        let tx = try tm.createTransaction(description: "t")
        _ = try rm1.enlist(tx)
        _ = try rm2.enlist(tx)
        let before = log.info().statistics.syncs
        try await tx.commit()
        let after = log.info().statistics.syncs
        #expect(after - before == 1)
        #expect(tx.outcome == .committed)
        #expect(box.seen.filter { $0 != "recovery-complete" && $0 != "tm-online" }.count == 6)
    }
}

final class RMBox: @unchecked Sendable {
    let lock = NSLock()
    var seen: [String] = []
    var streams: [GUID: LogStream] = [:]
    func handle(_ n: TransactionNotification) {
        lock.withLock { seen.append(n.kind.rawValue) }
        guard let e = n.enlistment else { return }
        switch n.kind {
        case .prePrepare: try! e.prePrepareComplete()
        case .prepare:
            _ = try! lock.withLock { streams[e.resourceManagerID]! }.append(Array("prepare".utf8))
            try! e.prepareComplete()
        case .commit: try! e.commitComplete()
        case .rollback: try! e.rollbackComplete()
        default: break
        }
    }
}
