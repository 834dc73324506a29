// The base file's two alternating slots (I8): generation g lives in slot g % 2, an update never touches
// the newest valid copy, and open takes the newest slot that validates. A damaged or torn newest slot
// falls back to the previous version; two damaged slots fail the open with `corrupt`.

import Foundation
import Testing
@testable import LogStore

private typealias Kit = FaultTestKit
private let slotSize = Format.baseSlotSize

/// The two slots of a base file, decoded (nil where a slot does not validate).
private func readSlots(_ dir: String) throws -> [BaseRecord?] {
    let bytes = try Kit.fileBytes(dir + "/" + Format.baseFileName)
    return (0..<2).map { slot in
        let start = slot * slotSize
        guard bytes.count > start else { return nil }
        let slice = Array(bytes[start..<min(bytes.count, start + slotSize)])
        return try? slice.withUnsafeBytes { try BaseRecord.decode($0) }
    }
}

private func newest(_ dir: String) throws -> BaseRecord {
    let slots = try readSlots(dir)
    return try #require(slots.compactMap { $0 }.max { $0.generation < $1.generation })
}

/// Flips one byte of the slot that holds `generation`.
private func corruptSlot(_ dir: String, generation: UInt64, at offset: Int = 20) throws {
    let path = dir + "/" + Format.baseFileName
    var bytes = try Kit.fileBytes(path)
    bytes[Int(generation % 2) * slotSize + offset] ^= 0x40
    try Kit.writeFile(path, bytes)
}

@Suite("BaseFile: alternating slots")
struct BaseFileTests {
    @Test("Every base update writes generation g+1 into slot (g+1) % 2 and leaves the other slot alone")
    func generationsAlternate() throws {
        let dir = Kit.temporaryPath("gen")
        defer { Kit.remove(dir) }
        let log = try LogStore.create(at: dir, options: Kit.tinyOptions(containers: 2))
        var previous = try newest(dir)
        // create writes generation 1, open writes 2 with a new epoch.
        #expect(previous.generation == 2)
        #expect(previous.epoch == 1)
        for k in 0..<5 {
            let before = try readSlots(dir)
            let id = try log.addContainer()
            #expect(id == UInt32(2 + k))
            let slots = try readSlots(dir)
            let now = try newest(dir)
            #expect(now.generation == previous.generation + 1)
            #expect(slots[Int(now.generation % 2)] == now)
            // The previous version is untouched in the other slot.
            #expect(slots[Int(previous.generation % 2)] == before[Int(previous.generation % 2)])
            #expect(slots[Int(previous.generation % 2)]?.generation == previous.generation)
            #expect(now.containers.map(\.physicalID) == Array(0...UInt32(2 + k)))
            #expect(now.nextPhysicalID == UInt32(3 + k))
            previous = now
        }
        try log.close()
        let closed = try newest(dir)
        #expect(closed.generation == previous.generation + 1)
        #expect(closed.flags & BaseRecord.cleanShutdownFlag != 0)
        let again = try LogStore.open(at: dir)
        #expect(again.recoveryReport.cleanShutdown)
        #expect(again.recoveryReport.metadataNotes.isEmpty)
        let reopened = try newest(dir)
        #expect(reopened.generation == closed.generation + 1)
        #expect(reopened.epoch == closed.epoch + 1)
        #expect(reopened.flags & BaseRecord.cleanShutdownFlag == 0)
        try again.close()
    }

    @Test("A damaged newest slot: open takes the older valid slot and reports it", arguments: [16, 20, 100, 140, 180])
    func damagedNewestSlotFallsBack(offset: Int) throws {
        let dir = Kit.temporaryPath("fallback")
        defer { Kit.remove(dir) }
        // Stop the base file from being written after the last addContainer (close cannot record a clean
        // shutdown), so the newest slot names five containers and the older one four.
        let io = FaultyFileIO()
        var ledger = FaultLedger()
        let log = try LogStore.create(at: dir, options: Kit.tinyOptions(containers: 2), io: io)
        #expect(ledger.round(log, count: 50) == nil)
        for _ in 0..<3 { try log.addContainer() }
        io.inject(.pwritev, nth: 1, sticky: true, .fail(errno: FaultyFileIO.EIO), pathContains: Format.baseFileName)
        // A failed base-file write is fail-stop, like a failed container sync.
        #expect(Kit.logError { try log.close() }?.code == .failed)
        let slots = try readSlots(dir)
        let top = try newest(dir)
        let older = try #require(slots[Int((top.generation - 1) % 2)])
        #expect(top.containers.count == 5)
        #expect(older.containers.count == 4)
        #expect(older.generation == top.generation - 1)

        try corruptSlot(dir, generation: top.generation, at: offset)
        #expect(try readSlots(dir)[Int(top.generation % 2)] == nil, "the flipped byte did not invalidate the slot")
        let reader = try LogStore.open(at: dir, options: LogOpenOptions(readOnly: true))
        #expect(reader.info().containers.map(\.physicalID) == [0, 1, 2, 3])
        #expect(!reader.recoveryReport.metadataNotes.isEmpty)
        try ledger.verify(reader)
        try reader.close()
        // A writable open rewrites the damaged slot with the next generation; the log keeps working, and
        // the orphan file of container 4 (never named by the surviving version) is replaced when re-added.
        let writer = try LogStore.open(at: dir)
        #expect(try newest(dir).generation == top.generation)
        #expect(try readSlots(dir).allSatisfy { $0 != nil })
        #expect(try writer.addContainer() == 4)
        #expect(ledger.round(writer, count: 20) == nil)
        try writer.close()
        try ledger.verify(directory: dir)
    }

    @Test("A damaged newest slot of a cleanly closed log: the older slot wins, the log is recovered by scanning")
    func damagedCloseRecord() throws {
        let dir = Kit.temporaryPath("fallback")
        defer { Kit.remove(dir) }
        let log = try LogStore.create(at: dir, options: Kit.tinyOptions(containers: 2))
        var ledger = FaultLedger()
        #expect(ledger.round(log, count: 80) == nil)
        try log.close()
        let top = try newest(dir)
        #expect(top.flags & BaseRecord.cleanShutdownFlag != 0)
        try corruptSlot(dir, generation: top.generation)
        let again = try LogStore.open(at: dir)
        #expect(!again.recoveryReport.cleanShutdown)
        #expect(!again.recoveryReport.metadataNotes.isEmpty)
        #expect(try ledger.verify(again) == ledger.entries.count)
        try again.close()
    }

    @Test("Both slots damaged: open fails with corrupt (writable and read-only), and nothing is rewritten")
    func bothSlotsDamaged() throws {
        let dir = Kit.temporaryPath("both")
        defer { Kit.remove(dir) }
        let log = try LogStore.create(at: dir, options: Kit.tinyOptions(containers: 2))
        try log.addContainer()
        try log.close()
        let top = try newest(dir)
        try corruptSlot(dir, generation: top.generation)
        try corruptSlot(dir, generation: top.generation - 1, at: 200)
        let damaged = try Kit.fileBytes(dir + "/" + Format.baseFileName)
        for options in [LogOpenOptions(), LogOpenOptions(readOnly: true)] {
            let e = Kit.logError { _ = try LogStore.open(at: dir, options: options) }
            #expect(e?.code == .corrupt)
            #expect(e?.path?.hasSuffix(Format.baseFileName) == true)
        }
        #expect(try Kit.fileBytes(dir + "/" + Format.baseFileName) == damaged, "a failed open changed the base file")
        // Zeroed completely, the file has no signature at all: BaseFile.readNewest says notFound.
        try Kit.writeFile(dir + "/" + Format.baseFileName, [UInt8](repeating: 0, count: damaged.count))
        #expect(Kit.logError { _ = try LogStore.open(at: dir) }?.code == .notFound)
    }

    @Test("A damaged version field in one slot does not make a log with a valid slot unopenable",
          .bug(id: "faults-1", "BaseFile.readNewest rethrows unsupportedVersion from any slot before checking its CRC"),
          arguments: [true, false])
    func damagedVersionField(inNewestSlot: Bool) throws {
        let dir = Kit.temporaryPath("version")
        defer { Kit.remove(dir) }
        let log = try LogStore.create(at: dir, options: Kit.tinyOptions(containers: 2))
        var ledger = FaultLedger()
        #expect(ledger.round(log, count: 50) == nil)
        try log.close()
        let top = try newest(dir)
        // Byte 9 is the high byte of the version: one flipped bit there is damage, not a newer format
        // (the slot's CRC no longer matches).
        try corruptSlot(dir, generation: inNewestSlot ? top.generation : top.generation - 1, at: 9)
        let damagedSlot = Int((inNewestSlot ? top.generation : top.generation - 1) % 2)
        #expect(try readSlots(dir)[damagedSlot] == nil)
        let again = try LogStore.open(at: dir, options: LogOpenOptions(readOnly: true))
        #expect(!again.recoveryReport.metadataNotes.isEmpty)
        try ledger.verify(again)
        try again.close()
    }

    @Test("A torn first base update after create (only 8 bytes reach the zeroed slot) leaves an openable log",
          .bug(id: "faults-1", "BaseFile.readNewest: a torn slot showing magic + version 0 is taken for a newer format"))
    func tornFirstUpdateAfterCreate() throws {
        let dir = Kit.temporaryPath("tornfirst")
        defer { Kit.remove(dir) }
        let io = FaultyFileIO()
        // create writes txlog.base.tmp (the first matching write), then opens the log, which writes
        // generation 2 into slot 0, until then all zeros.
        io.inject(.pwritev, nth: 2, .tornWrite(keepBytes: 8), pathContains: Format.baseFileName)
        let e = Kit.logError { _ = try LogStore.create(at: dir, options: Kit.tinyOptions(containers: 2), io: io) }
        #expect(e?.code == .io)
        #expect(io.faultedCalls.first?.path.hasSuffix("/" + Format.baseFileName) == true)
        #expect(io.openFiles.isEmpty)
        let slots = try readSlots(dir)
        #expect(slots[0] == nil)
        #expect(slots[1]?.generation == 1)
        let log = try LogStore.open(at: dir)
        var ledger = FaultLedger()
        #expect(ledger.round(log, count: 10) == nil)
        try log.close()
        try ledger.verify(directory: dir)
    }

    @Test("A damaged newest slot written at a container switch must not silently drop acknowledged records",
          .bug(id: "faults-2", "Recovery falls back to the pre-switch slot and never looks at the newer container"))
    func damagedSwitchSlot() throws {
        let dir = Kit.temporaryPath("switchslot")
        defer { Kit.remove(dir) }
        let io = FaultyFileIO()
        var ledger = FaultLedger()
        let log = try LogStore.create(at: dir, options: Kit.tinyOptions(containers: 3), io: io)
        while log.info().containers.filter({ $0.state == .active }).count < 2 {
            try #require(ledger.round(log, count: 48) == nil)
        }
        try #require(ledger.round(log, count: 48) == nil)
        // The newest slot is the switch to logical container 2; keep close from writing another one.
        io.inject(.pwritev, nth: 1, sticky: true, .fail(errno: FaultyFileIO.EIO), pathContains: Format.baseFileName)
        #expect(Kit.logError { try log.close() }?.code == .failed)
        let top = try newest(dir)
        #expect(top.scanStart.container == 2)
        let inContainer2 = ledger.entries.filter { $0.lsn.container == 2 }.count
        #expect(inContainer2 > 0)
        try corruptSlot(dir, generation: top.generation)

        var strict = LogOpenOptions(readOnly: true)
        strict.recovery = .strict
        // Strict recovery fails on any anomaly; the default mode must either fail as corrupt or find
        // every acknowledged record. Recovering without them, a writer would reuse container 1 and
        // overwrite acknowledged data.
        #expect(Kit.logError { _ = try LogStore.open(at: dir, options: strict) }?.code == .corrupt)
        do {
            let again = try LogStore.open(at: dir, options: LogOpenOptions(readOnly: true))
            defer { try? again.close() }
            #expect(try ledger.verify(again) >= ledger.acked)
        } catch let e as LogError {
            #expect(e.code == .corrupt)
        }
    }

    struct TornCase: Sendable, CustomTestStringConvertible {
        var keep: Int
        var during: String
        var testDescription: String { "\(during), \(keep) bytes reach the slot" }
    }

    @Test("A torn base write leaves a log that opens with the previous version", arguments: [
        // The new slot's checksummed bytes end at 128 + 8 + 4 + 32 * containers (236 for three), the last
        // ones usually zero like the old bytes under them; a prefix reaching that far is a complete write
        // (the new version, which I8 allows), so these stop well short of it.
        TornCase(keep: 8, during: "addContainer"), TornCase(keep: 128, during: "addContainer"),
        TornCase(keep: 230, during: "addContainer"), TornCase(keep: 100, during: "advanceBase"),
        TornCase(keep: 200, during: "advanceBase"),
    ])
    func tornBaseWrite(_ c: TornCase) throws {
        let dir = Kit.temporaryPath("torn")
        defer { Kit.remove(dir) }
        let io = FaultyFileIO()
        var ledger = FaultLedger()
        let log = try LogStore.create(at: dir, options: Kit.tinyOptions(containers: 2), io: io)
        #expect(ledger.round(log, count: 50) == nil)
        try log.addContainer()
        let before = try newest(dir)
        let base0 = log.baseLSN
        // The torn write, then every later base write fails, so close cannot repair the slot.
        io.inject(.pwritev, nth: 1, .tornWrite(keepBytes: c.keep), pathContains: Format.baseFileName)
        io.inject(.pwritev, nth: 2, sticky: true, .fail(errno: FaultyFileIO.EIO), pathContains: Format.baseFileName)
        let e = Kit.logError {
            if c.during == "addContainer" { _ = try log.addContainer() } else { try log.advanceBase(to: ledger.entries[30].lsn) }
        }
        // Base-file write errors are fail-stop, whatever operation wrote the base file.
        let failStop = true
        #expect(e?.code == (failStop ? .failed : .io))
        #expect(e?.errno == FaultyFileIO.EIO)
        #expect(log.isFailed == failStop)
        #expect(log.baseLSN == base0)
        #expect(log.info().containers.count == 3)
        #expect(Kit.logError { try log.close() }?.code == (failStop ? .failed : .io))
        #expect(io.openFiles.isEmpty)
        // The torn slot holds a prefix of the new version over the previous one: it is never the new
        // version, never a blend; either it no longer validates, or (when the prefix matched the old
        // bytes) it is still exactly the old version.
        let tornSlot = Int((before.generation + 1) % 2)
        let tornRecord = try readSlots(dir)[tornSlot]
        if c.keep > 24 { #expect(tornRecord == nil) }
        if let tornRecord { #expect(tornRecord.generation == before.generation - 1) }
        #expect(try newest(dir) == before)

        let again = try LogStore.open(at: dir)
        #expect(again.baseLSN == base0)
        #expect(again.info().containers.map(\.physicalID) == [0, 1, 2])
        #expect(again.recoveryReport.metadataNotes.isEmpty == (tornRecord != nil))
        try ledger.verify(again)
        #expect(ledger.round(again, count: 10) == nil)
        try again.close()
        try ledger.verify(directory: dir)
    }
}
