// Zeroed sectors (reliability issue, part 3): 512 bytes of zeros over acknowledged data in the scanned
// container after a crash, inside a closed container, over a container header, and over a base-file
// slot. Each is detected and reported with where it is; point-in-time recovery opens read-only and returns
// exactly the acknowledged records before the damage; no open writes anything.

import Foundation
import Testing
@testable import LogStore

private typealias Kit = FaultTestKit
private typealias D = DamageKit

@Suite("Damage: zeroed sectors")
struct ZeroedSectorTests {
    static func zero(_ path: String, at offset: UInt64, count: Int = Format.sectorSize) throws {
        var bytes = try Kit.fileBytes(path)
        bytes.replaceSubrange(Int(offset)..<(Int(offset) + count), with: repeatElement(0, count: count))
        try Kit.writeFile(path, bytes)
    }

    /// The block positions (slot 0 LSNs) of `ledger`'s records in logical container `logical`, in order.
    static func blocks(_ ledger: FaultLedger, in logical: UInt32) -> [LSN] {
        var out: [LSN] = []
        for e in ledger.entries where e.lsn.container == logical && out.last != e.lsn.blockLSN { out.append(e.lsn.blockLSN) }
        return out
    }

    @Test("A zeroed sector in an acknowledged block of the scanned container after a crash: corrupt there; point-in-time keeps the prefix",
          arguments: [0, 3, 6])
    func zeroedAfterCrash(round: Int) throws {
        let dir = Kit.temporaryPath("zerocrash")
        defer { Kit.remove(dir) }
        var ledger = FaultLedger()
        let log = try LogStore.create(at: dir, options: Kit.tinyOptions(containers: 4))
        for _ in 0..<8 { try #require(ledger.round(log, count: 12) == nil) }
        let image = try Kit.copy(dir, tag: "zerocrash-image")
        defer { Kit.remove(image) }
        try log.close()
        // The first block of a round (each round's flush sealed the block before it); blocks of later rounds
        // carry durable hints at or above it, so the damage is known to be below the durable point.
        let victim = ledger.entries[round * 12].lsn
        try #require(victim.slot == 0)
        try Self.zero(image + "/" + D.container(0), at: victim.blockOffset)
        let before = try D.snapshot(image)
        for (mode, options) in D.modes where options.recovery != .pointInTime {
            let e = Kit.logError { _ = try LogStore.open(at: image, options: options) }
            #expect(e?.code == .corrupt && e?.lsn == victim && e?.container == 0 && e?.offset == victim.blockOffset, "\(mode): \(String(describing: e))")
        }
        let pit = try LogStore.open(at: image, options: LogOpenOptions(readOnly: true, recovery: .pointInTime))
        #expect(pit.recoveryReport.corruption?.lsn == victim)
        let kept = ledger.entries.firstIndex { $0.lsn >= victim } ?? 0
        #expect(try D.matchingPrefix(pit, ledger) == kept, "point-in-time recovery must return every record before the damage")
        try pit.close()
        #expect(try D.snapshot(image) == before, "an open changed the files")
        let v = try ToolTests.run(["verify", image, "--json"])
        let problem = (v.object["problems"] as? [[String: Any]])?.first
        #expect(v.status == 1 && problem?["lsn"] as? String == victim.description && problem?["offset"] as? Int == Int(victim.blockOffset))
    }

    @Test("A zeroed sector in a closed container: the log opens, the damaged block reads as corrupt, everything else reads back")
    func zeroedInClosedContainer() throws {
        let (dir, ledger) = try D.threeContainerLog("zeroclosed")
        defer { Kit.remove(dir) }
        let victim = Self.blocks(ledger, in: 1)[3]
        try Self.zero(dir + "/" + D.container(0), at: victim.blockOffset + 512)
        for (mode, options) in D.modes {
            let log = try LogStore.open(at: dir, options: options)
            for e in ledger.entries {
                if e.lsn.blockLSN == victim {
                    #expect(Kit.logError { _ = try log.read(e.lsn) }?.code == .corrupt, "\(mode)")
                } else {
                    #expect(try log.read(e.lsn).data == e.data, "\(mode)")
                }
            }
            try log.close()
        }
        let v = try ToolTests.run(["verify", dir, "--keep-going", "--json"])
        let problems = v.object["problems"] as? [[String: Any]] ?? []
        #expect(v.status == 1 && problems.count == 1 && problems.first?["lsn"] as? String == victim.description, "\(v.out)")
    }

    @Test("A zeroed block header in a closed container: a read by LSN is corrupt (not notFound), and the restart-area chain does not end there silently")
    func zeroedBlockHeaderInClosedContainer() throws {
        let dir = Kit.temporaryPath("zerohdr")
        defer { Kit.remove(dir) }
        let log = try LogStore.create(at: dir, options: Kit.tinyOptions(containers: 4))
        let s = try log.createStream("s")
        var data: [(LSN, [UInt8])] = []
        var restarts: [LSN] = []
        var i = 0
        while log.info().containers.filter({ $0.state == .active }).count < 3 {
            data.append((try s.append(Kit.payload(i)), Kit.payload(i)))
            i += 1
            if i % 40 == 0 { restarts.append(try s.writeRestartArea(Array("restart \(i)".utf8))) }
        }
        try log.close()
        // A restart area in the closed logical container 1, and the one written after it.
        let victim = try #require(restarts.first { $0.container == 1 })
        let after = try #require(restarts.first { $0 > victim })
        try Self.zero(dir + "/" + D.container(0), at: victim.blockOffset)
        // An LSN inside a block (no block starts there) stays notFound.
        let inside = LSN(uncheckedContainer: 1, blockOffset: UInt64(Format.containerDataStart + 512), slot: 0)
        try #require(!data.contains { $0.0.blockLSN == inside })
        for (mode, options) in D.modes {
            let l = try LogStore.open(at: dir, options: options)
            let e = Kit.logError { _ = try l.read(victim) }
            #expect(e?.code == .corrupt && e?.container == 0 && e?.offset == victim.blockOffset, "\(mode): \(String(describing: e))")
            #expect(Kit.logError { _ = try l.read(inside) }?.code == .notFound, "\(mode)")
            for (lsn, bytes) in data where lsn.blockLSN != victim.blockLSN { #expect(try l.read(lsn).data == bytes, "\(mode)") }
            // Walking the restart areas back from a later one meets the damage as an error, not as the chain's start.
            let chain = Kit.logError { _ = try l.openStream("s").previousRestartArea(before: after) }
            #expect(chain?.code == .corrupt, "\(mode): \(String(describing: chain))")
            try l.close()
        }
    }

    @Test("A torn tail a writable open dropped is not met again: after a clean close without writing, strict opens and nothing is reported")
    func droppedTornTailIsGone() throws {
        let dir = Kit.temporaryPath("torngone")
        defer { Kit.remove(dir) }
        var ledger = FaultLedger()
        let log = try LogStore.create(at: dir, options: Kit.tinyOptions(containers: 4))
        for _ in 0..<3 { try #require(ledger.round(log, count: 12) == nil) }
        let image = try Kit.copy(dir, tag: "torngone-image")
        defer { Kit.remove(image) }
        try log.close()
        // The crash image's last block torn (nothing claims it durable).
        let torn = try #require(ledger.entries.last).lsn.blockLSN
        var bytes = try Kit.fileBytes(image + "/" + D.container(0))
        bytes[Int(torn.blockOffset) + 100] ^= 0x55
        try Kit.writeFile(image + "/" + D.container(0), bytes)
        let first = try LogStore.open(at: image)
        #expect(first.recoveryReport.tornTail != nil)
        try first.close()
        for (mode, options) in D.modes {
            let l = try LogStore.open(at: image, options: options)
            #expect(l.recoveryReport.tornTail == nil && l.lastLSN < torn, "\(mode)")
            try l.close()
        }
    }

    @Test("A zeroed container header: corrupt at the container, offset 0, in every mode")
    func zeroedContainerHeader() throws {
        let (dir, _) = try D.threeContainerLog("zeroheader")
        defer { Kit.remove(dir) }
        try Self.zero(dir + "/" + D.container(1), at: 0)
        for (mode, options) in D.modes {
            let e = Kit.logError { _ = try LogStore.open(at: dir, options: options) }
            #expect(e?.code == .corrupt && e?.container == 1 && e?.offset == 0, "\(mode): \(String(describing: e))")
        }
        let v = try ToolTests.run(["verify", dir, "--json"])
        let problem = (v.object["problems"] as? [[String: Any]])?.first
        #expect(v.status == 1 && problem?["container"] as? Int == 1 && problem?["offset"] as? Int == 0, "\(v.out)")
    }

    @Test("A zeroed base slot is reported, not taken for a slot never written; the other slot opens the log", arguments: [true, false])
    func zeroedBaseSlot(newest: Bool) throws {
        let (dir, ledger) = try D.threeContainerLog("zeroslot")
        defer { Kit.remove(dir) }
        let log = try LogStore.open(at: dir, options: LogOpenOptions(readOnly: true))
        let generation = try #require(try log.scanBlocks().baseSlots.first { $0.state == .current }?.generation)
        try log.close()
        let slot = Int(newest ? generation % 2 : (generation + 1) % 2)
        try Self.zero(dir + "/" + D.base, at: UInt64(slot * Format.baseSlotSize), count: Format.baseSlotSize)
        let reader = try LogStore.open(at: dir, options: LogOpenOptions(readOnly: true))
        #expect(reader.recoveryReport.metadataNotes.contains { $0.contains("slot \(slot): all zeros") }, "\(reader.recoveryReport.metadataNotes)")
        #expect(try ledger.verify(reader) == ledger.entries.count)
        try reader.close()
        let e = Kit.logError { _ = try LogStore.open(at: dir, options: LogOpenOptions(readOnly: true, recovery: .strict)) }
        #expect(e?.code == .corrupt, "\(String(describing: e))")
        let v = try ToolTests.run(["verify", dir, "--json"])
        let problem = (v.object["problems"] as? [[String: Any]])?.first
        #expect(v.status == 1 && problem?["kind"] as? String == "base" && problem?["offset"] as? Int == slot * Format.baseSlotSize, "\(v.out)")
    }
}
