// Shared by the whole-file damage tests (SwapDamageTests, StaleBaseTests, StrayFileTests): logs in a known
// layout, swapping and copying files, and the four ways to open a log.

import Foundation
import Testing
@testable import LogStore
import TxLogTestSupport

enum DamageKit {
    typealias Kit = FaultTestKit

    static let base = Format.baseFileName

    static func container(_ physical: UInt32) -> String { ContainerFiles.name(physicalID: physical) }

    /// A closed log of four containers: logical containers 1, 2 and 3 hold acknowledged records in
    /// physical containers 0, 1 and 2; container 3 is free.
    static func threeContainerLog(_ tag: String) throws -> (dir: String, ledger: FaultLedger) {
        let dir = Kit.temporaryPath(tag)
        return try removingOnThrow(dir) {
            let log = try LogStore.create(at: dir, options: Kit.tinyOptions(containers: 4))
            defer { try? log.close() }
            var ledger = FaultLedger()
            while log.info().containers.filter({ $0.state == .active }).count < 3 {
                try #require(ledger.round(log, count: 48) == nil)
            }
            try #require(ledger.round(log, count: 20) == nil)
            try log.close()
            return (dir, ledger)
        }
    }

    /// A log of `containers` containers after one closed session of 40 acknowledged records, with a copy
    /// of its base file as that session left it (the stale-base tests put it back later).
    static func firstSession(_ dir: String, containers: Int) throws -> (ledger: FaultLedger, baseCopy: [UInt8]) {
        var ledger = FaultLedger()
        let log = try LogStore.create(at: dir, options: Kit.tinyOptions(containers: containers))
        try #require(ledger.round(log, count: 40) == nil)
        try log.close()
        return (ledger, try Kit.fileBytes(dir + "/" + base))
    }

    /// The four ways to open: default, read-only, strict (read-only) and point-in-time.
    static let modes: [(String, LogOpenOptions)] = [
        ("default", LogOpenOptions()), ("read-only", LogOpenOptions(readOnly: true)),
        ("strict", LogOpenOptions(readOnly: true, recovery: .strict)), ("point-in-time", LogOpenOptions(readOnly: true, recovery: .pointInTime)),
    ]

    /// Every file of a directory by name (to show that a failed open wrote nothing).
    static func snapshot(_ dir: String) throws -> [String: [UInt8]] {
        var out: [String: [UInt8]] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: dir) { out[name] = try Kit.fileBytes(dir + "/" + name) }
        return out
    }

    /// Exchanges two files' contents by renaming (`a` gets `b`'s inode and the other way round).
    static func swap(_ dir: String, _ a: String, _ b: String) throws {
        let fm = FileManager.default
        try fm.moveItem(atPath: dir + "/" + a, toPath: dir + "/swap.tmp")
        try fm.moveItem(atPath: dir + "/" + b, toPath: dir + "/" + a)
        try fm.moveItem(atPath: dir + "/swap.tmp", toPath: dir + "/" + b)
    }

    /// Exchanges the base file's two slots.
    static func exchangeSlots(_ dir: String) throws {
        let path = dir + "/" + base
        let bytes = try Kit.fileBytes(path)
        let n = Format.baseSlotSize
        try Kit.writeFile(path, Array(bytes[n..<(2 * n)]) + Array(bytes[0..<n]))
    }

    /// Flips one byte of the base-file slot holding the newest generation; returns that generation.
    @discardableResult
    static func damageNewestSlot(_ dir: String) throws -> UInt64 {
        let path = dir + "/" + base
        var bytes = try Kit.fileBytes(path)
        let generations = (0..<2).map { slot -> UInt64 in
            let s = Array(bytes[(slot * Format.baseSlotSize)..<((slot + 1) * Format.baseSlotSize)])
            return (try? s.withUnsafeBytes { try BaseRecord.decode($0) })?.generation ?? 0
        }
        let newest = try #require(generations.max())
        bytes[Int(newest % 2) * Format.baseSlotSize + 20] ^= 0x40
        try Kit.writeFile(path, bytes)
        return newest
    }

    /// The records a cursor from the start returns, compared with `ledger.entries[0..<count]` (I2/I3: a
    /// prefix of what was appended, nothing else). Returns how many matched before the first difference.
    static func matchingPrefix(_ log: LogStore, _ ledger: FaultLedger) throws -> Int {
        var cursor = try log.records()
        var n = 0
        while let r = try cursor.next() {
            guard n < ledger.entries.count, r.lsn == ledger.entries[n].lsn, r.data == ledger.entries[n].data else {
                Issue.record("record \(r.lsn) is not entry \(n) of what was appended")
                return n
            }
            n += 1
        }
        return n
    }
}
