// Whole files in the wrong place (reliability issue, part 3): two containers' contents exchanged, a
// container renamed onto another, the base file's two slots exchanged or one copied over the other, a
// base file from another log. Each is detected by the open in every recovery mode, with a typed error
// (`corrupt`) naming the file and the header field or slot; the failed open writes nothing; and once the
// files are put back, every acknowledged record is there. (The point-in-time mode cannot map LSNs to files
// it cannot trust either, so it fails the same way; see docs/RELIABILITY.md, Known limits.)

import Foundation
import Testing
@testable import LogStore

private typealias Kit = FaultTestKit
private typealias D = DamageKit

@Suite("Damage: swapped containers and base-file copies")
struct SwapDamageTests {
    struct Pair: Sendable, CustomTestStringConvertible {
        var a: UInt32
        var b: UInt32
        var testDescription: String { "containers \(a) and \(b)" }
    }

    @Test("Two containers' contents exchanged: every open fails with corrupt at the header's physical id; exchanged back, nothing is lost",
          arguments: [Pair(a: 0, b: 1), Pair(a: 1, b: 2), Pair(a: 2, b: 3)])
    func swappedContainers(_ p: Pair) throws {
        let (dir, ledger) = try D.threeContainerLog("swap")
        defer { Kit.remove(dir) }
        try D.swap(dir, D.container(p.a), D.container(p.b))
        let before = try D.snapshot(dir)
        for (mode, options) in D.modes {
            let e = Kit.logError { _ = try LogStore.open(at: dir, options: options) }
            #expect(e?.code == .corrupt, "\(mode): \(String(describing: e))")
            // Containers are checked in physical order: the lower id of the pair is found first.
            #expect(e?.container == p.a && e?.offset == 32, "\(mode): \(String(describing: e))")
            #expect(e?.path?.hasSuffix("/" + D.container(p.a)) == true)
            #expect(e?.message.contains("holds container \(p.b)") == true, "\(String(describing: e))")
        }
        #expect(try D.snapshot(dir) == before, "a failed open changed the files")
        try D.swap(dir, D.container(p.a), D.container(p.b))
        #expect(try ledger.verify(directory: dir) == ledger.entries.count)
    }

    @Test("A container renamed onto another: the overwritten name is reported, the moved one is missing")
    func renamedOntoAnother() throws {
        let (dir, _) = try D.threeContainerLog("rename")
        defer { Kit.remove(dir) }
        try FileManager.default.removeItem(atPath: dir + "/" + D.container(0))
        try FileManager.default.moveItem(atPath: dir + "/" + D.container(1), toPath: dir + "/" + D.container(0))
        for (mode, options) in D.modes {
            let e = Kit.logError { _ = try LogStore.open(at: dir, options: options) }
            #expect(e?.code == .corrupt && e?.container == 0 && e?.offset == 32, "\(mode): \(String(describing: e))")
        }
        // Put back under its own name, container 1 is fine and container 0 is reported missing.
        try FileManager.default.moveItem(atPath: dir + "/" + D.container(0), toPath: dir + "/" + D.container(1))
        let e = Kit.logError { _ = try LogStore.open(at: dir) }
        #expect(e?.code == .notFound && e?.container == 0, "\(String(describing: e))")
    }

    @Test("A container copied over another (both names hold the same container): corrupt at the copy")
    func copiedOverAnother() throws {
        let (dir, ledger) = try D.threeContainerLog("copy")
        defer { Kit.remove(dir) }
        let original = try Kit.fileBytes(dir + "/" + D.container(2))
        try Kit.writeFile(dir + "/" + D.container(2), try Kit.fileBytes(dir + "/" + D.container(1)))
        for (mode, options) in D.modes {
            let e = Kit.logError { _ = try LogStore.open(at: dir, options: options) }
            #expect(e?.code == .corrupt && e?.container == 2 && e?.offset == 32, "\(mode): \(String(describing: e))")
            #expect(e?.message.contains("holds container 1") == true)
        }
        try Kit.writeFile(dir + "/" + D.container(2), original)
        try ledger.verify(directory: dir)
    }

    @Test("The base file's two slots exchanged: corrupt, naming both slots; exchanged back, nothing is lost")
    func exchangedSlots() throws {
        let (dir, ledger) = try D.threeContainerLog("slots")
        defer { Kit.remove(dir) }
        try D.exchangeSlots(dir)
        let before = try D.snapshot(dir)
        for (mode, options) in D.modes {
            let e = Kit.logError { _ = try LogStore.open(at: dir, options: options) }
            #expect(e?.code == .corrupt, "\(mode): \(String(describing: e))")
            #expect(e?.path?.hasSuffix("/" + D.base) == true)
            #expect(e?.message.contains("slot 0: generation") == true && e?.message.contains("slot 1: generation") == true, "\(String(describing: e))")
            #expect(e?.message.contains("belongs to the other slot") == true)
        }
        #expect(try D.snapshot(dir) == before, "a failed open changed the files")
        try D.exchangeSlots(dir)
        #expect(try ledger.verify(directory: dir) == ledger.entries.count)
    }

    @Test("One base slot copied over the other: the misplaced copy is ignored and noted; strict refuses it")
    func slotCopiedOverTheOther() throws {
        let (dir, ledger) = try D.threeContainerLog("slotcopy")
        defer { Kit.remove(dir) }
        let path = dir + "/" + D.base
        var bytes = try Kit.fileBytes(path)
        let n = Format.baseSlotSize
        for (from, to) in [(0, 1), (1, 0)] {
            let copy = bytes
            bytes.replaceSubrange((to * n)..<((to + 1) * n), with: bytes[(from * n)..<((from + 1) * n)])
            try Kit.writeFile(path, bytes)
            // The slot in its own place opens the log; the copy is noted.
            let log = try LogStore.open(at: dir, options: LogOpenOptions(readOnly: true))
            #expect(log.recoveryReport.metadataNotes.contains { $0.contains("belongs to the other slot") }, "\(log.recoveryReport.metadataNotes)")
            #expect(try ledger.verify(log) == ledger.entries.count)
            try log.close()
            let e = Kit.logError { _ = try LogStore.open(at: dir, options: LogOpenOptions(readOnly: true, recovery: .strict)) }
            #expect(e?.code == .corrupt && e?.message.contains("strict") == true, "\(String(describing: e))")
            bytes = copy
            try Kit.writeFile(path, bytes)
        }
    }

    @Test("A base file from another log: corrupt at the first container, naming both log ids; nothing is written")
    func baseFileOfAnotherLog() throws {
        let (dir, ledger) = try D.threeContainerLog("foreignbase")
        defer { Kit.remove(dir) }
        let (other, _) = try D.threeContainerLog("foreignbase2")
        defer { Kit.remove(other) }
        let own = try Kit.fileBytes(dir + "/" + D.base)
        try Kit.writeFile(dir + "/" + D.base, try Kit.fileBytes(other + "/" + D.base))
        let before = try D.snapshot(dir)
        let otherLog = try LogStore.open(at: other, options: LogOpenOptions(readOnly: true))
        let baseID = otherLog.info().logID
        try otherLog.close()
        for (mode, options) in D.modes {
            let e = Kit.logError { _ = try LogStore.open(at: dir, options: options) }
            #expect(e?.code == .corrupt && e?.container == 0 && e?.offset == 16, "\(mode): \(String(describing: e))")
            #expect(e?.message.contains("belongs to another log") == true && e?.message.contains("\(baseID)") == true, "\(String(describing: e))")
        }
        #expect(try D.snapshot(dir) == before, "a failed open changed the files")
        try Kit.writeFile(dir + "/" + D.base, own)
        #expect(try ledger.verify(directory: dir) == ledger.entries.count)
    }
}
