// A base file older than the containers (reliability issue, part 3): an older copy of the base file put
// back, or the newest slot damaged when it was the one that started a new epoch. The containers then
// hold acknowledged blocks the base file does not lead to. Recovery must not take the base file's end for
// the end of the log (that silently drops acknowledged records, and a writer would overwrite them): the
// open fails with `corrupt` naming where the newer blocks are, and point-in-time recovery opens read-only
// with what the base file describes. An older copy from the same epoch is not damage: the block chain
// leads recovery to the true end.

import Foundation
import Testing
@testable import LogStore

private typealias Kit = FaultTestKit
private typealias D = DamageKit

@Suite("Damage: a base file older than the containers")
struct StaleBaseTests {
    /// Checks that every open fails with corrupt (point-in-time opens and reports it), writes nothing, and
    /// that point-in-time recovery returns exactly `ledger`'s first `kept` records. Returns the error.
    @discardableResult
    static func expectDetected(_ dir: String, keeping kept: Int, of ledger: FaultLedger, sourceLocation: SourceLocation = #_sourceLocation) throws
        -> LogError?
    {
        let before = try D.snapshot(dir)
        var found: LogError?
        for (mode, options) in D.modes where options.recovery != .pointInTime {
            let e = Kit.logError { _ = try LogStore.open(at: dir, options: options) }
            #expect(e?.code == .corrupt && e?.container != nil && e?.offset != nil, "\(mode): \(String(describing: e))", sourceLocation: sourceLocation)
            #expect(e?.message.contains("older than the containers") == true, "\(String(describing: e))", sourceLocation: sourceLocation)
            found = e
        }
        let pit = try LogStore.open(at: dir, options: LogOpenOptions(readOnly: true, recovery: .pointInTime))
        defer { try? pit.close() }
        #expect(pit.recoveryReport.corruption == found, sourceLocation: sourceLocation)
        if kept >= 0 {
            #expect(try D.matchingPrefix(pit, ledger) == kept, "point-in-time recovery returns what the base file describes", sourceLocation: sourceLocation)
        }
        #expect(try D.snapshot(dir) == before, "an open changed the files", sourceLocation: sourceLocation)
        return found
    }

    @Test("An older copy of the base file, from before a later session wrote more: detected at the end it leads to")
    func olderCopyAcrossSessions() throws {
        let dir = Kit.temporaryPath("stale")
        defer { Kit.remove(dir) }
        let first = try D.firstSession(dir, containers: 4)
        var ledger = first.ledger
        let oldCopy = first.baseCopy
        let firstSession = ledger.entries.count
        let again = try LogStore.open(at: dir)
        try #require(ledger.round(log: again, count: 40) == nil)
        try again.close()
        let current = try Kit.fileBytes(dir + "/" + D.base)

        try Kit.writeFile(dir + "/" + D.base, oldCopy)
        let e = try Self.expectDetected(dir, keeping: firstSession, of: ledger)
        // The newer blocks start exactly where the old base file's log ends: the first record of session 2.
        #expect(e?.lsn == ledger.entries[firstSession].lsn.blockLSN, "\(String(describing: e))")
        #expect(e?.container == 0 && e?.offset == ledger.entries[firstSession].lsn.blockOffset)
        try Kit.writeFile(dir + "/" + D.base, current)
        #expect(try ledger.verify(directory: dir) == ledger.entries.count)
    }

    @Test("An older copy of the base file, from before the containers were recycled: detected at a recycled container")
    func olderCopyAcrossRecycling() throws {
        let dir = Kit.temporaryPath("stalerecycle")
        defer { Kit.remove(dir) }
        let first = try D.firstSession(dir, containers: 3)
        var ledger = first.ledger
        let oldCopy = first.baseCopy
        let firstSession = ledger.entries
        // A second session runs the log several times around its three containers.
        let again = try LogStore.open(at: dir)
        while (ledger.entries.last?.lsn.container ?? 0) < 7 {
            try #require(ledger.round(log: again, count: 48) == nil)
            try again.advanceBase(to: ledger.entries[ledger.entries.count - 60].lsn)
        }
        try again.close()
        try Kit.writeFile(dir + "/" + D.base, oldCopy)
        let e = try Self.expectDetected(dir, keeping: -1, of: ledger)
        #expect(e?.lsn == nil && e?.offset == 4096, "\(String(describing: e))")
        #expect(e?.message.contains("holds logical container") == true)
        // Point-in-time reads of the old base file's records never return other bytes (I3): the recycled
        // container's blocks belong to other logical containers, so the reads fail.
        let pit = try LogStore.open(at: dir, options: LogOpenOptions(readOnly: true, recovery: .pointInTime))
        defer { try? pit.close() }
        for entry in firstSession {
            do {
                #expect(try pit.read(entry.lsn).data == entry.data)
            } catch let error as LogError {
                // corrupt, or notFound where no block of that logical container starts any more.
                #expect(error.code == .corrupt || error.code == .notFound, "\(error)")
            }
        }
    }

    @Test("A damaged newest base slot that started a new epoch must not silently drop the epoch's acknowledged records",
          .bug(id: "damage-1", "Recovery fell back to the previous slot, took the new epoch's blocks for stale ones and opened a shorter log"))
    func damagedSlotOfNewEpoch() throws {
        let dir = Kit.temporaryPath("epochslot")
        defer { Kit.remove(dir) }
        var ledger = try D.firstSession(dir, containers: 4).ledger
        let firstSession = ledger.entries.count
        // The open writes the new epoch into the base file; 40 acknowledged records follow in the same
        // container (no more base-file writes). The crash image is taken with the log still open.
        let again = try LogStore.open(at: dir)
        try #require(ledger.round(log: again, count: 40) == nil)
        let image = try Kit.copy(dir, tag: "epochslot-image")
        defer { Kit.remove(image) }
        try again.close()
        try D.damageNewestSlot(image)
        try Self.expectDetected(image, keeping: firstSession, of: ledger)
    }

    @Test("An older copy of the base file from the same epoch is not damage: the chain leads recovery to the end")
    func olderCopySameEpoch() throws {
        let dir = Kit.temporaryPath("sameepoch")
        defer { Kit.remove(dir) }
        var ledger = FaultLedger()
        let log = try LogStore.create(at: dir, options: Kit.tinyOptions(containers: 4))
        try #require(ledger.round(log, count: 40) == nil)
        let oldCopy = try Kit.fileBytes(dir + "/" + D.base)
        // The same session switches containers twice (two base-file updates the old copy lacks).
        while log.info().containers.filter({ $0.state == .active }).count < 3 {
            try #require(ledger.round(log, count: 48) == nil)
        }
        let image = try Kit.copy(dir, tag: "sameepoch-image")
        defer { Kit.remove(image) }
        try log.close()
        try Kit.writeFile(image + "/" + D.base, oldCopy)
        // Read-only opens first: the writable one records the switches in the base file.
        for (mode, options) in D.modes.reversed() where options.recovery != .strict {
            let reopened = try LogStore.open(at: image, options: options)
            #expect(reopened.recoveryReport.corruption == nil, "\(mode)")
            #expect(reopened.recoveryReport.metadataNotes.contains { $0.contains("container switch") }, "\(mode)")
            #expect(try ledger.verify(reopened) == ledger.entries.count, "\(mode)")
            try reopened.close()
        }
    }
}

extension FaultLedger {
    /// `round` on another log handle (reads better at call sites that switch handles).
    mutating func round(log: LogStore, count: Int) -> LogError? { round(log, count: count) }
}
