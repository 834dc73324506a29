// `TransactionManager.list` and `txlog tm list` with one stream whose restart record cannot be read.
// Before, one unreadable restart area made the whole list fail (`corrupt`, no TM listed, no stream
// named), even another program's stream that is no TM's at all.

import Foundation
import LogStore
import Testing
@testable import TransactionManager

@Suite("Listing transaction managers beside an unreadable stream")
struct TMListTests {
    /// A closed log holding another program's stream `kv` (a data record, then a restart area that is
    /// no TM checkpoint) and two TMs (streams `ktm-2` and `ktm`), in that order, with the blocks of the
    /// restart records of the streams in `damage` damaged on disk. Each TM's replay starts after the
    /// damage of the streams before it (a stream's cursor cannot pass a damaged block of another stream).
    struct Fixture {
        let dir: TMScratch
        let tm: GUID
        let tm2: GUID

        init(_ tag: String, damage: Set<String>) throws {
            dir = TMScratch("list-\(tag)")
            let log = try LogStore.create(at: dir.path, options: TMScratch.options)
            let kv = try log.createStream("kv")
            let kvData = try kv.append(Array("kv data".utf8))
            try log.flush()
            let kvRestart = try kv.writeRestartArea(Array("kv checkpoint".utf8))
            try log.flush()
            let tm2 = try TransactionManager.create(log: log, stream: "ktm-2")
            try log.flush()
            let tm = try TransactionManager.create(log: log)
            (self.tm, self.tm2) = (tm.id, tm2.id)
            try log.flush()
            // Later records, so no damaged block is the log's last (recovery would take it for a torn tail).
            let after = try log.createStream("after")
            for _ in 0..<3 {
                _ = try after.append([UInt8](repeating: 1, count: 100))
                try log.flush()
            }
            var restarts: [String: LSN] = ["kv": kvRestart]
            for s in log.streams() where s.name.hasPrefix("ktm") { restarts[s.name] = s.restartLSN }
            try log.close()
            // Each damaged block holds that restart record alone.
            let blocks = Set(restarts.values.map(\.blockLSN))
            try #require(blocks.count == 3 && !blocks.contains(kvData.blockLSN), "\(restarts), kv data \(kvData)")
            for name in damage { try Self.damageBlock(of: try #require(restarts[name]), in: dir.path) }
        }

        /// Flips a byte in the block holding `lsn`: every record of that block then reads as `corrupt`.
        static func damageBlock(of lsn: LSN, in path: String) throws {
            let reader = try LogStore.open(at: path, options: LogOpenOptions(readOnly: true))
            let container = try #require(reader.info().containers.first { $0.state.holdsData && $0.logicalID == lsn.container })
            try reader.close()
            let handle = try FileHandle(forUpdating: URL(fileURLWithPath: container.path))
            defer { try? handle.close() }
            try handle.seek(toOffset: lsn.blockOffset + 48)
            let byte = try #require(try handle.read(upToCount: 1)?.first)
            try handle.seek(toOffset: lsn.blockOffset + 48)
            try handle.write(contentsOf: Data([byte ^ 0x5A]))
        }

        func openReadOnly() throws -> LogStore { try LogStore.open(at: dir.path, options: LogOpenOptions(readOnly: true)) }
    }

    @Test("another program's stream whose restart record cannot be read is not listed; the TMs are")
    func unreadableNonTMStreamIsLeftOut() throws {
        let f = try Fixture("kv", damage: ["kv"])
        defer { f.dir.remove() }
        let log = try f.openReadOnly()
        defer { try? log.close() }
        let listed = TransactionManager.list(log: log)
        #expect(listed.map(\.stream) == ["ktm-2", "ktm"], "\(listed)")
        #expect(listed.map { $0.info?.id } == [f.tm2, f.tm], "\(listed)")
        // And opening a TM by id is not stopped by it.
        #expect(throws: Never.self) { try TransactionManager.open(log: log, id: f.tm2).close() }
    }

    @Test("a TM whose checkpoint cannot be read is listed with its error, beside the TMs that can be")
    func unreadableTMIsListedWithItsError() throws {
        let f = try Fixture("tm", damage: ["ktm-2", "kv"])
        defer { f.dir.remove() }
        let log = try f.openReadOnly()
        defer { try? log.close() }
        let listed = TransactionManager.list(log: log)
        #expect(listed.map(\.stream) == ["ktm-2", "ktm"], "\(listed)")
        #expect(listed.first?.info == nil && listed.first?.error?.code == .corrupt, "\(listed)")
        #expect(listed.last?.info?.id == f.tm, "\(listed)")
        #expect(throws: Never.self) { try TransactionManager.open(log: log, id: f.tm).close() }
    }

    @Test("txlog tm list: the readable TMs are printed, the unreadable one is named (stderr, --json), exit 1")
    func toolListsAroundTheUnreadableTM() async throws {
        let f = try Fixture("tool", damage: ["ktm-2", "kv"])
        defer { f.dir.remove() }
        let text = try await TxlogBinary.run(["tm", "list", f.dir.path])
        #expect(text.status == 1 && !text.signaled, "\(text.summary)")
        #expect(text.out.contains("tm \(f.tm)  stream ktm "), "\(text.summary)")
        #expect(text.out.contains("stream ktm-2  cannot read its transaction-manager checkpoint: corrupt:"), "\(text.summary)")
        #expect(!text.out.contains("stream kv "), "\(text.summary)")
        #expect(text.err == "txlog: corrupt: 1 transaction-manager checkpoint cannot be read (stream ktm-2); run txlog verify\n", "\(text.summary)")

        let json = try await TxlogBinary.run(["tm", "list", f.dir.path, "--json"])
        #expect(json.status == 1, "\(json.summary)")
        let entries = json.array
        #expect(entries.map { $0["streamName"] as? String } == ["ktm-2", "ktm"], "\(json.summary)")
        #expect(entries.first?["id"] == nil && entries.first?["code"] as? String == "corrupt", "\(json.summary)")
        #expect(entries.last?["id"] as? String == f.tm.description && entries.last?["error"] == nil, "\(json.summary)")
    }

    @Test("txlog tm list: another program's unreadable stream alone does not fail the list (exit 0)")
    func toolIgnoresUnreadableNonTMStream() async throws {
        let f = try Fixture("tool-kv", damage: ["kv"])
        defer { f.dir.remove() }
        let r = try await TxlogBinary.run(["tm", "list", f.dir.path, "--json"])
        #expect(r.status == 0 && r.err.isEmpty, "\(r.summary)")
        #expect(r.array.map { $0["id"] as? String } == [f.tm2.description, f.tm.description], "\(r.summary)")
    }
}
