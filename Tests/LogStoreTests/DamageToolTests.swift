// `txlog verify` on whole-file damage (reliability issue, part 3): swapped containers, exchanged base
// slots, a base file of another log, an older copy of the base file, and stray files. Damage exits 1 with
// one problem naming the file (path), the physical container and the byte offset; stray files are notes
// and leave a clean log's exit code 0. Never a crash or a stack trace.

import Foundation
import Testing
@testable import LogStore

private typealias Kit = FaultTestKit
private typealias D = DamageKit

@Suite("txlog verify on whole-file damage", .serialized)
struct DamageToolTests {
    struct Finding {
        var status: Int32
        var problem: [String: Any]
        var text: String
    }

    /// `verify --json` and `verify` (text) on `dir`: the exit status, the first problem, and the text output.
    static func verify(_ dir: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> Finding {
        let json = try ToolTests.run(["verify", dir, "--json"])
        let text = try ToolTests.run(["verify", dir])
        #expect(json.status == text.status, sourceLocation: sourceLocation)
        for r in [json, text] {
            #expect(!r.err.contains("Fatal error") && !r.err.contains("Stack") && r.err.isEmpty, "\(r.err)", sourceLocation: sourceLocation)
        }
        let problem = (json.object["problems"] as? [[String: Any]])?.first ?? [:]
        return Finding(status: json.status, problem: problem, text: text.out)
    }

    @Test("swapped containers, exchanged slots, another log's base file: exit 1, the file and field named")
    func swappedFiles() throws {
        #expect(FileManager.default.isExecutableFile(atPath: ToolTests.txlog), "build txlog first: \(ToolTests.txlog)")
        let (dir, _) = try D.threeContainerLog("toolswap")
        defer { Kit.remove(dir) }

        try D.swap(dir, D.container(0), D.container(1))
        let swapped = try Self.verify(dir)
        #expect(swapped.status == 1)
        #expect(swapped.problem["kind"] as? String == "container" && swapped.problem["container"] as? Int == 0)
        #expect(swapped.problem["offset"] as? Int == 32 && (swapped.problem["path"] as? String)?.hasSuffix("/container-000000") == true)
        #expect(swapped.text.contains("CORRUPT") && swapped.text.contains("holds container 1") && swapped.text.contains("offset 32"), "\(swapped.text)")
        try D.swap(dir, D.container(0), D.container(1))
        #expect(try Self.verify(dir).status == 0)

        try D.exchangeSlots(dir)
        let slots = try Self.verify(dir)
        #expect(slots.status == 1 && slots.problem["kind"] as? String == "base", "\(slots.problem)")
        #expect((slots.problem["message"] as? String)?.contains("belongs to the other slot") == true)
        #expect((slots.problem["path"] as? String)?.hasSuffix("/txlog.base") == true)
        try D.exchangeSlots(dir)

        let (other, _) = try D.threeContainerLog("toolswap2")
        defer { Kit.remove(other) }
        let own = try Kit.fileBytes(dir + "/" + D.base)
        try Kit.writeFile(dir + "/" + D.base, try Kit.fileBytes(other + "/" + D.base))
        let foreign = try Self.verify(dir)
        #expect(foreign.status == 1 && foreign.problem["container"] as? Int == 0 && foreign.problem["offset"] as? Int == 16)
        #expect((foreign.problem["message"] as? String)?.contains("belongs to another log") == true)
        try Kit.writeFile(dir + "/" + D.base, own)
        #expect(try Self.verify(dir).status == 0)
    }

    @Test("an older copy of the base file: exit 1 at the first block it does not lead to, or at the recycled container")
    func staleBaseFile() throws {
        let dir = Kit.temporaryPath("toolstale")
        defer { Kit.remove(dir) }
        let first = try D.firstSession(dir, containers: 3)
        var ledger = first.ledger
        let oldCopy = first.baseCopy
        let again = try LogStore.open(at: dir)
        try #require(ledger.round(again, count: 40) == nil)
        try again.close()
        let current = try Kit.fileBytes(dir + "/" + D.base)

        try Kit.writeFile(dir + "/" + D.base, oldCopy)
        let session = try Self.verify(dir)
        let next = ledger.entries[40].lsn
        #expect(session.status == 1 && session.problem["lsn"] as? String == next.blockLSN.description, "\(session.problem)")
        #expect(session.problem["container"] as? Int == 0 && session.problem["offset"] as? Int == Int(next.blockOffset))
        #expect(session.text.contains("older than the containers"), "\(session.text)")

        // Recycle the containers several times, then put the old copy back.
        try Kit.writeFile(dir + "/" + D.base, current)
        let third = try LogStore.open(at: dir)
        while (ledger.entries.last?.lsn.container ?? 0) < 7 {
            try #require(ledger.round(third, count: 48) == nil)
            try third.advanceBase(to: ledger.entries[ledger.entries.count - 60].lsn)
        }
        try third.close()
        try Kit.writeFile(dir + "/" + D.base, oldCopy)
        let recycled = try Self.verify(dir)
        #expect(recycled.status == 1 && recycled.problem["offset"] as? Int == 4096 && recycled.problem["container"] is Int, "\(recycled.problem)")
        #expect((recycled.problem["message"] as? String)?.contains("holds logical container") == true)
    }

    @Test("stray files: notes naming each one, and a clean log still exits 0")
    func strayFiles() throws {
        let (dir, _) = try D.threeContainerLog("toolstray")
        defer { Kit.remove(dir) }
        _ = try StrayFileTests.addStrays(dir)
        let json = try ToolTests.run(["verify", dir, "--json"])
        #expect(json.status == 0 && json.object["ok"] as? Bool == true, "\(json.out)")
        let notes = (json.object["notes"] as? [String] ?? []).filter { $0.hasPrefix("stray file ") }
        #expect(notes.count == 7, "\(notes)")
        #expect(notes.contains { $0.contains("kv-6b1c0a58-0000-4000-8000-000000000001-3.snap.tmp: other, a key-value store's snapshot file") })
        #expect(notes.contains { $0.contains("container-000009: orphan-container, header of this log's container 1") })
        let text = try ToolTests.run(["verify", dir])
        #expect(text.status == 0 && text.out.contains("note        stray file txlog.base.tmp: base-temporary") && text.out.contains("ok: the log is clean"), "\(text.out)")
    }

    /// A damaged base-file slot of a log that opens on the other one: `stats` said "1 damaged block(s)
    /// skipped" and `damagedBlocks: 1`, and `map` "1 damaged block(s), drawn as X" with no X drawn, though
    /// every block was read and counted. It is damage (exit 1), named as what it is.
    @Test("stats and map on a damaged base-file slot: exit 1 naming the slot, no block counted as damaged")
    func damagedSlotIsNoBlock() throws {
        let (dir, _) = try D.threeContainerLog("toolslot")
        defer { Kit.remove(dir) }
        let clean = try ToolTests.run(["stats", dir, "--json"])
        try #require(clean.status == 0 && clean.object["damagedBlocks"] as? Int == 0, "\(clean.err)")
        try D.damageNewestSlot(dir)
        let json = try ToolTests.run(["stats", dir, "--json"])
        #expect(json.status == 1 && json.object["damagedBlocks"] as? Int == 0, "\(json.out)")
        #expect(json.object["blocks"] as? Int == clean.object["blocks"] as? Int, "every block was read")
        #expect(json.err == "txlog: corrupt: 1 problem(s) in the base file; run txlog verify\n", "\(json.err)")
        let text = try ToolTests.run(["stats", dir])
        #expect(text.status == 1 && !text.out.contains("block(s)") && text.out.contains("1 problem(s) in the base file"), "\(text.out)")
        let map = try ToolTests.run(["map", dir])
        #expect(map.status == 1 && map.err == "txlog: corrupt: 1 problem(s) in the base file; run txlog verify\n", "\(map.err)")
    }

    /// `verify --keep-going` of a log whose damage stops it from opening (a truncated container) ended with
    /// "FAILED: 1 problem found (stopped at the first; --keep-going reports all)": the reader was told to
    /// pass the option they had passed. It says that the damage stops the open instead.
    @Test("verify --keep-going on damage that stops the open: says so, never 'use --keep-going'")
    func keepGoingOnUnopenableLog() throws {
        let (dir, _) = try D.threeContainerLog("toolkeep")
        defer { Kit.remove(dir) }
        try #require(truncate(dir + "/" + D.container(1), 8192) == 0)
        for args in [["verify", dir, "--keep-going"], ["verify", dir]] {
            let r = try ToolTests.run(args)
            #expect(r.status == 1 && r.err.isEmpty, "\(args): \(r.status) \(r.err)")
            #expect(r.out.contains("FAILED: 1 problem found (it stops the log from opening") && !r.out.contains("--keep-going"), "\(args): \(r.out)")
        }
        let json = try ToolTests.run(["verify", dir, "--keep-going", "--json"])
        #expect(json.status == 1 && json.object["complete"] as? Bool == false && (json.object["problems"] as? [Any])?.count == 1, "\(json.out)")
    }

    /// Runs `txlog` with `args`; nil when it was still running after `seconds` (then it is killed).
    static func runBounded(_ args: [String], seconds: Double) throws -> Int32? {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: ToolTests.txlog)
        p.arguments = args
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        let deadline = Date().addingTimeInterval(seconds)
        while p.isRunning, Date() < deadline { usleep(20_000) }
        let hung = p.isRunning
        if hung { kill(p.processIdentifier, SIGKILL) }
        p.waitUntilExit()
        return hung ? nil : p.terminationStatus
    }

    @Test("a FIFO named like a container, or put where a container belongs: verify never waits for a writer that never comes")
    func fifos() throws {
        let (dir, _) = try D.threeContainerLog("toolfifo")
        defer { Kit.remove(dir) }
        try #require(mkfifo(dir + "/container-000077", 0o644) == 0)
        #expect(try Self.runBounded(["verify", dir], seconds: 20) == 0, "a stray FIFO is a note, the log is clean")
        // The free container's file replaced by a FIFO: damage, reported, not a hang.
        try FileManager.default.removeItem(atPath: dir + "/" + D.container(3))
        try #require(mkfifo(dir + "/" + D.container(3), 0o644) == 0)
        #expect(try Self.runBounded(["verify", dir], seconds: 20) == 1)
    }
}
