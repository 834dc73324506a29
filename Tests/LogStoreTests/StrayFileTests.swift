// Files in a log directory that the base file does not name (reliability issue, part 3; the rule is in
// docs/format/README.md, "The files of a log"): a stray container-named file, a copy of a container, an
// orphan left by an interrupted add or remove, a leftover txlog.base.tmp, a key-value snapshot's temporary
// file, anything else. Open never reads, moves or deletes them, in any mode; `strayFiles()` lists them;
// only `create`, `addContainer` replace a file of the exact name they are about to create.

import Foundation
import Testing
@testable import LogStore

private typealias Kit = FaultTestKit
private typealias D = DamageKit

@Suite("Damage: extra and unknown files in the log directory")
struct StrayFileTests {
    /// Puts one of each kind of stray file into `dir`; returns their names and contents.
    static func addStrays(_ dir: String) throws -> [String: [UInt8]] {
        var g = SplitMix64(seed: 7)
        let noise = (0..<(Int(Kit.containerSize))).map { _ in UInt8(truncatingIfNeeded: g.next()) }
        let files: [String: [UInt8]] = [
            // Named like a container, not a container: never opened.
            "container-000007": noise,
            // A copy of a listed container under a name the base file does not use.
            "container-000009": try Kit.fileBytes(dir + "/" + D.container(1)),
            "container-000001.bak": Array("a backup someone made".utf8),
            Format.baseFileName + ".tmp": Array(noise.prefix(2 * Format.baseSlotSize)),
            "kv-6b1c0a58-0000-4000-8000-000000000001-3.snap.tmp": Array(noise.prefix(100)),
            "README.txt": Array("not the log's\n".utf8),
        ]
        for (name, bytes) in files { try Kit.writeFile(dir + "/" + name, bytes) }
        try FileManager.default.createDirectory(atPath: dir + "/subdirectory", withIntermediateDirectories: false)
        return files
    }

    @Test("Stray files are never read, changed or removed by any open, and the log is unaffected")
    func strayFilesAreIgnored() throws {
        let (dir, ledger) = try D.threeContainerLog("stray")
        defer { Kit.remove(dir) }
        let strays = try Self.addStrays(dir)
        for (mode, options) in D.modes {
            let log = try LogStore.open(at: dir, options: options)
            #expect(log.recoveryReport.corruption == nil && log.recoveryReport.metadataNotes.isEmpty, "\(mode)")
            #expect(try ledger.verify(log) == ledger.entries.count, "\(mode)")
            try log.close()
        }
        // A writable session that writes and closes leaves them alone too.
        var more = ledger
        let log = try LogStore.open(at: dir)
        #expect(more.round(log, count: 30) == nil)
        try log.close()
        try more.verify(directory: dir)
        for (name, bytes) in strays { #expect(try Kit.fileBytes(dir + "/" + name) == bytes, "\(name) changed") }
        #expect(FileManager.default.fileExists(atPath: dir + "/subdirectory"))
    }

    @Test("strayFiles() names every file the base file does not, with what it holds")
    func strayFilesAreListed() throws {
        let (dir, _) = try D.threeContainerLog("straylist")
        defer { Kit.remove(dir) }
        _ = try Self.addStrays(dir)
        let log = try LogStore.open(at: dir, options: LogOpenOptions(readOnly: true))
        defer { try? log.close() }
        let stray = try log.strayFiles()
        #expect(stray.map(\.name) == [
            "README.txt", "container-000001.bak", "container-000007", "container-000009",
            "kv-6b1c0a58-0000-4000-8000-000000000001-3.snap.tmp", "subdirectory", "txlog.base.tmp",
        ])
        let byName = Dictionary(uniqueKeysWithValues: stray.map { ($0.name, $0) })
        #expect(byName["container-000007"]?.kind == .orphanContainer)
        #expect(byName["container-000007"]?.detail.contains("no valid container header") == true)
        #expect(byName["container-000009"]?.detail.contains("this log's container 1 (a copy of a listed container)") == true)
        #expect(byName["container-000001.bak"]?.kind == .orphanContainer)
        #expect(byName["txlog.base.tmp"]?.kind == .baseTemporary)
        #expect(byName["README.txt"]?.kind == .other && byName["subdirectory"]?.kind == .other)
        // A clean directory has none.
        let (clean, _) = try D.threeContainerLog("straynone")
        defer { Kit.remove(clean) }
        let cleanLog = try LogStore.open(at: clean, options: LogOpenOptions(readOnly: true))
        #expect(try cleanLog.strayFiles().isEmpty)
        try cleanLog.close()
    }

    @Test("The orphan of an interrupted removeContainer is named as this log's, not in the base file, and ignored")
    func orphanOfRemove() throws {
        let (dir, ledger) = try D.threeContainerLog("orphanremove")
        defer { Kit.remove(dir) }
        let free = try Kit.fileBytes(dir + "/" + D.container(3))
        let log = try LogStore.open(at: dir)
        try log.removeContainer(3)
        try log.close()
        // The crash came after the base file dropped container 3 and before its file was unlinked.
        try Kit.writeFile(dir + "/" + D.container(3), free)
        let reader = try LogStore.open(at: dir, options: LogOpenOptions(readOnly: true))
        #expect(reader.info().containers.map(\.physicalID) == [0, 1, 2])
        let stray = try reader.strayFiles()
        #expect(stray.count == 1 && stray.first?.detail.contains("this log's container 3 (not in the base file)") == true, "\(stray)")
        try ledger.verify(reader)
        try reader.close()
    }

    @Test("create and addContainer replace a leftover of the exact name they create, and nothing else")
    func leftoversOfTheLogsOwnNamesAreReplaced() throws {
        let dir = Kit.temporaryPath("leftover")
        defer { Kit.remove(dir) }
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: false)
        // An interrupted create left its temporary base file and one container; someone left a note.
        try Kit.writeFile(dir + "/" + Format.baseFileName + ".tmp", [UInt8](repeating: 0x5A, count: 1000))
        try Kit.writeFile(dir + "/" + D.container(0), [UInt8](repeating: 0xA5, count: 4096))
        try Kit.writeFile(dir + "/notes.txt", Array("keep me".utf8))
        let log = try LogStore.create(at: dir, options: Kit.tinyOptions(containers: 2))
        var ledger = FaultLedger()
        #expect(ledger.round(log, count: 20) == nil)
        // The next container id is 2; a stray file of that name is an orphan of an interrupted add.
        try Kit.writeFile(dir + "/" + D.container(2), [UInt8](repeating: 0xA5, count: 4096))
        #expect(try log.addContainer() == 2)
        #expect(try log.strayFiles().map(\.name) == ["notes.txt"])
        try log.close()
        #expect(try Kit.fileBytes(dir + "/notes.txt") == Array("keep me".utf8))
        try ledger.verify(directory: dir)
    }
}
