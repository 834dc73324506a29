// NotificationMask.normalized: KTM's implications between notifications, and that enlisting applies them.

import Testing
@testable import TransactionManager

@Suite struct NotificationMaskTests {
    @Test func rollbackIsAlwaysDelivered() {
        #expect(NotificationMask().normalized == .rollback)
        #expect(NotificationMask.rollback.normalized == .rollback)
        #expect(NotificationMask.commit.normalized == [.commit, .rollback])
    }

    @Test func prepareImpliesCommit() {
        #expect(NotificationMask.prepare.normalized == [.prepare, .commit, .rollback])
        #expect(NotificationMask([.prepare, .rollback]).normalized == [.prepare, .commit, .rollback])
    }

    @Test func prePrepareImpliesPrepareAndCommit() {
        #expect(NotificationMask.prePrepare.normalized == [.prePrepare, .prepare, .commit, .rollback])
        #expect(NotificationMask.prePrepare.normalized == .twoPhase)
    }

    @Test func singlePhaseImpliesPrepareAndCommit() {
        #expect(NotificationMask.singlePhaseCommit.normalized == [.singlePhaseCommit, .prepare, .commit, .rollback])
        #expect(NotificationMask([.singlePhaseCommit, .prePrepare]).normalized == .all)
    }

    @Test func unknownBitsAreDropped() {
        #expect(NotificationMask(rawValue: 0x10).normalized == .rollback)
        #expect(NotificationMask(rawValue: 0xFFFF_FFFF).normalized == .all)
        #expect(NotificationMask(rawValue: 0x8000_0002).normalized.rawValue == 0x2 | 0x4 | 0x8)
    }

    @Test func normalizingIsIdempotent() {
        for raw in [0, 0x1, 0x2, 0x4, 0x8, 0x200, 0x201, 0x20F, 0xFFFF] as [UInt32] {
            let once = NotificationMask(rawValue: raw).normalized
            #expect(once.normalized == once)
        }
    }

    @Test func rawValuesAreKTMs() {
        #expect(NotificationMask.prePrepare.rawValue == 0x1)
        #expect(NotificationMask.prepare.rawValue == 0x2)
        #expect(NotificationMask.commit.rawValue == 0x4)
        #expect(NotificationMask.rollback.rawValue == 0x8)
        #expect(NotificationMask.singlePhaseCommit.rawValue == 0x200)
        #expect(NotificationMask.twoPhase.description == "pre-prepare|prepare|commit|rollback")
        #expect(NotificationMask().description == "none")
    }

    @Test func enlistingNormalizesTheMask() throws {
        let tm = TransactionManager.volatile()
        try tm.recover()
        let rm = try ScriptedRM.online(tm, volatile: true)
        let tx = try tm.createTransaction()
        #expect(try rm.enlist(tx, mask: []).mask == .rollback)
        #expect(try rm.enlist(tx, mask: .prepare).mask == [.prepare, .commit, .rollback])
        #expect(try rm.enlist(tx, mask: .singlePhaseCommit).mask == [.singlePhaseCommit, .prepare, .commit, .rollback])
        let e = try rm.enlist(tx, mask: .prePrepare)
        #expect(e.mask == .twoPhase)
        #expect(tx.snapshot.participants.map(\.mask) == [.rollback, [.prepare, .commit, .rollback], [.singlePhaseCommit, .prepare, .commit, .rollback], .twoPhase])
        try tx.rollback()
    }
}
