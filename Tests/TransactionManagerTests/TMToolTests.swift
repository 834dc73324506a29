// `txlog tm list | transactions | resolve` and `txlog dump`'s TM decoding, run as the built binary on a log
// holding an in-doubt transaction (prepared under a superior, never decided).

import Foundation
import LogStore
import Testing
@testable import TransactionManager

@Suite("txlog tm end to end")
struct TMToolTests {
    /// A log whose TM holds one in-doubt transaction with one durable participant.
    struct InDoubtLog {
        var dir: String
        var tm: GUID
        var rm: GUID
        var tx: GUID
        var enlistment: GUID
    }

    static func makeInDoubtLog() async throws -> InDoubtLog {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tm-tool-\(UUID().uuidString)").path
        let log = try LogStore.create(at: dir, options: LogCreateOptions(containerSize: 512 << 10, containerCount: 2, blockSize: 4096))
        let tm = try TransactionManager.create(log: log)
        try tm.recover()
        let recorder = RecordingRM()
        let rm = try tm.createResourceManager(description: "ledger") { n in
            guard let e = n.enlistment else { return }
            switch n.kind {
            case .prePrepare: try? e.prePrepareComplete()
            case .prepare: try? e.prepareComplete()
            default: recorder.handle(n)
            }
        }
        try rm.recover()
        let tx = try tm.createTransaction(description: "xa branch 7")
        let e = try rm.enlist(tx)
        let superior = try tx.enlistSuperior()
        #expect(try await superior.prepare() == .prepared)
        // The superior never decides: the log is closed with the transaction prepared.
        try log.close()
        return InDoubtLog(dir: dir, tm: tm.id, rm: rm.id, tx: tx.id, enlistment: e.id)
    }

    /// Every file of a directory, by name, for checking that a read-only command wrote nothing.
    static func contents(_ dir: String) throws -> [String: Data] {
        var out: [String: Data] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: dir) {
            out[name] = try Data(contentsOf: URL(fileURLWithPath: dir + "/" + name))
        }
        return out
    }

    /// The `tm` objects of `dump --json` lines.
    static func decodedTM(_ run: TxlogBinary.Run) -> [[String: Any]] {
        run.out.split(separator: "\n").compactMap {
            (try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])?["tm"] as? [String: Any]
        }
    }

    @Test("list, transactions and resolve commit on an in-doubt transaction; the RM then gets commit")
    func resolveInDoubt() async throws {
        let f = try await Self.makeInDoubtLog()
        defer { try? FileManager.default.removeItem(atPath: f.dir) }
        let untouched = try Self.contents(f.dir)

        let list = try await TxlogBinary.run(["tm", "list", f.dir, "--json"])
        #expect(list.status == 0, "\(list.summary)")
        let tms = list.array
        try #require(tms.count == 1, "\(list.summary)")
        #expect(tms[0]["id"] as? String == f.tm.description)
        #expect(tms[0]["stream"] as? String == "ktm")
        #expect(tms[0]["transactionsOwed"] as? Int == 1)
        let listedRMs = (tms[0]["resourceManagers"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String }
        #expect(listedRMs == [f.rm.description])
        for key in ["checkpointLSN", "lastLSN", "baseLSN"] { #expect(tms[0][key] is String, "\(key)") }

        let txs = try await TxlogBinary.run(["tm", "transactions", f.dir, "--json"])
        #expect(txs.status == 0, "\(txs.summary)")
        let report = txs.object
        #expect(report["tm"] as? String == f.tm.description)
        let recovery = report["recovery"] as? [String: Any] ?? [:]
        #expect(recovery["inDoubt"] as? Int == 1 && recovery["committing"] as? Int == 0 && recovery["aborting"] as? Int == 0, "\(recovery)")
        #expect((report["resourceManagers"] as? [[String: Any]])?.first?["description"] as? String == "ledger")
        let list2 = report["transactions"] as? [[String: Any]] ?? []
        try #require(list2.count == 1, "\(txs.summary)")
        let t = list2[0]
        #expect(t["id"] as? String == f.tx.description)
        #expect(t["state"] as? String == "in-doubt")
        #expect(t["outcome"] as? String == "undetermined")
        #expect(t["superior"] as? Bool == true)
        #expect(t["description"] as? String == "xa branch 7")
        #expect((t["age"] as? [String: Any])?["sinceLSN"] is String)
        let parts = t["participants"] as? [[String: Any]] ?? []
        try #require(parts.count == 1)
        #expect(parts[0]["enlistment"] as? String == f.enlistment.description)
        #expect(parts[0]["resourceManager"] as? String == f.rm.description)
        #expect(parts[0]["acknowledged"] as? Bool == false)
        #expect(parts[0]["state"] as? String == "recovering")
        let text = try await TxlogBinary.run(["tm", "transactions", f.dir])
        #expect(text.status == 0 && text.out.contains("in-doubt") && text.out.contains(f.tx.description), "\(text.summary)")
        let before = try await TxlogBinary.run(["dump", f.dir, "--stream", "ktm", "--json"])
        #expect(Self.decodedTM(before).contains {
            $0["kind"] as? String == "prepared" && $0["transaction"] as? String == f.tx.description && $0["enlistments"] as? Int == 1
                && $0["outcome"] as? String == "undetermined"
        }, "\(before.summary)")
        #expect(try Self.contents(f.dir) == untouched, "a read-only command (tm list, tm transactions, dump) changed the log")

        // Refusals: an unknown transaction (3), and rollback... after commit (below, 8); the LogError code first.
        let unknown = try await TxlogBinary.run(["tm", "resolve", f.dir, GUID.random().description, "commit"])
        #expect(unknown.status == 3 && unknown.err.hasPrefix("txlog: not-found:"), "\(unknown.summary)")
        // An empty actor (`--actor "$OPERATOR"` with the variable unset) would force an anonymous outcome:
        // refused before the log is opened.
        let beforeAnonymous = try Self.contents(f.dir)
        for actor in ["", "  "] {
            let anonymous = try await TxlogBinary.run(["tm", "resolve", f.dir, f.tx.description, "commit", "--actor", actor])
            #expect(anonymous.status == 64 && anonymous.err.hasPrefix("txlog: invalid-argument: --actor"), "\(anonymous.summary)")
        }
        #expect(try Self.contents(f.dir) == beforeAnonymous, "a resolve refused for its --actor changed the log")

        let resolved = try await TxlogBinary.run(
            ["tm", "resolve", f.dir, f.tx.description, "commit", "--reason", "superior lost", "--actor", "tester", "--json"])
        #expect(resolved.status == 0, "\(resolved.summary)")
        #expect(resolved.object["outcome"] as? String == "committed")
        #expect(resolved.object["stateBefore"] as? String == "in-doubt")
        #expect(resolved.object["participantsOwed"] as? Int == 1)
        let refused = try await TxlogBinary.run(["tm", "resolve", f.dir, f.tx.description, "rollback"])
        #expect(refused.status == 8 && refused.err.hasPrefix("txlog: invalid-state:"), "\(refused.summary)")

        // dump decodes the TM's records: the resolve's final checkpoint, which covers its `forced` record
        // (the base moved past it, to the checkpoint itself) and carries it in its audit trail.
        let dump = try await TxlogBinary.run(["dump", f.dir, "--stream", "ktm", "--json"])
        #expect(dump.status == 0, "\(dump.summary)")
        let decoded = Self.decodedTM(dump)
        #expect(decoded.contains { $0["kind"] as? String == "checkpoint" })
        let dumpText = try await TxlogBinary.run(["dump", f.dir])
        #expect(dumpText.out.contains("1 forced outcomes kept"), "\(dumpText.summary)")
        let audit = try await TxlogBinary.run(["tm", "audit", f.dir, "--json"])
        let kept = audit.object["forcedOutcomes"] as? [[String: Any]] ?? []
        #expect(kept.contains {
            $0["transaction"] as? String == f.tx.description && $0["action"] as? String == "commit" && $0["actor"] as? String == "tester"
                && $0["reason"] as? String == "superior lost"
        }, "\(audit.summary)")

        // In process: the forced outcome is in the TM's audit trail, and the RM gets recover, then commit.
        let log = try openWritable(f.dir)
        defer { try? log.close() }
        let tm = try TransactionManager.open(log: log)
        try tm.recover()
        #expect(tm.lastRecovery.committing == 1 && tm.lastRecovery.inDoubt == 0, "\(tm.lastRecovery)")
        let forced = tm.forcedOutcomes
        try #require(forced.count == 1, "\(forced)")
        let o = forced[0]
        #expect(o.transaction == f.tx && o.action == .commit && o.actor == "tester" && o.reason == "superior lost" && o.unixNanos > 0)
        let recorder = RecordingRM()
        let rm = try tm.openResourceManager(id: f.rm) { recorder.handle($0) }
        recorder.attach(rm)
        try rm.recover()
        #expect(recorder.notifications(for: f.tx) == [.recover, .commit])
        #expect(recorder.problems.isEmpty, "\(recorder.problems)")
        #expect(tm.transactionSnapshots().isEmpty)
        try tm.close()
        try log.close()

        let after = try await TxlogBinary.run(["tm", "transactions", f.dir, "--json"])
        #expect(after.status == 0 && (after.object["transactions"] as? [Any])?.isEmpty == true, "\(after.summary)")
    }

    @Test("resolve refuses a log another process holds (exit 2); transactions reads it meanwhile; forget drops the transaction")
    func lockedThenForget() async throws {
        let f = try await Self.makeInDoubtLog()
        defer { try? FileManager.default.removeItem(atPath: f.dir) }
        let holder = try openWritable(f.dir)
        let locked = try await TxlogBinary.run(["tm", "resolve", f.dir, f.tx.description, "rollback"], retryLocked: false)
        #expect(locked.status == 2, "\(locked.summary)")
        let reading = try await TxlogBinary.run(["tm", "transactions", f.dir, "--json"])
        #expect(reading.status == 0 && (reading.object["transactions"] as? [Any])?.count == 1, "\(reading.summary)")
        try holder.close()

        let forget = try await TxlogBinary.run(["tm", "resolve", f.dir, f.tx.description, "forget", "--reason", "participant gone"])
        #expect(forget.status == 0 && forget.out.contains("forgotten"), "\(forget.summary)")
        let log = try openWritable(f.dir)
        defer { try? log.close() }
        let tm = try TransactionManager.open(log: log)
        try tm.recover()
        #expect(tm.transactionSnapshots().isEmpty)
        let recorder = RecordingRM()
        let rm = try tm.openResourceManager(id: f.rm) { recorder.handle($0) }
        try rm.recover()
        #expect(recorder.notifications(for: f.tx).isEmpty, "a forgotten transaction is not sent to its participants")
        try tm.close()
        try log.close()
    }

    @Test("tm audit lists a forced outcome, text and JSON, after the checkpoint resolve's close writes")
    func auditAfterResolve() async throws {
        let f = try await Self.makeInDoubtLog()
        defer { try? FileManager.default.removeItem(atPath: f.dir) }
        let empty = try await TxlogBinary.run(["tm", "audit", f.dir, "--json"])
        #expect(empty.status == 0, "\(empty.summary)")
        #expect((empty.object["forcedOutcomes"] as? [Any])?.isEmpty == true, "\(empty.summary)")

        let resolved = try await TxlogBinary.run(
            ["tm", "resolve", f.dir, f.tx.description, "rollback", "--reason", "superior lost", "--actor", "tester"])
        #expect(resolved.status == 0, "\(resolved.summary)")
        // The forced record's LSN and time, read from the log in process.
        let log = try openWritable(f.dir)
        let tm = try TransactionManager.open(log: log)
        try tm.recover()
        let kept = try #require(tm.forcedOutcomes.first)
        #expect(tm.forcedOutcomes.count == 1)
        #expect(try tmCheckpoint(tm).forcedOutcomes == [kept], "resolve's close wrote a checkpoint carrying it")
        try log.close()
        let untouched = try Self.contents(f.dir)

        let json = try await TxlogBinary.run(["tm", "audit", f.dir, "--json"])
        #expect(json.status == 0, "\(json.summary)")
        #expect(json.object["tm"] as? String == f.tm.description)
        #expect(json.object["stream"] as? String == "ktm")
        let list = json.object["forcedOutcomes"] as? [[String: Any]] ?? []
        try #require(list.count == 1, "\(json.summary)")
        #expect(list[0]["lsn"] as? String == kept.lsn.description)
        #expect(list[0]["transaction"] as? String == f.tx.description)
        #expect(list[0]["action"] as? String == "rollback")
        #expect(list[0]["actor"] as? String == "tester")
        #expect(list[0]["reason"] as? String == "superior lost")
        #expect((list[0]["unixNanos"] as? NSNumber)?.uint64Value == kept.unixNanos)
        let time = try #require(list[0]["time"] as? String)
        let seconds = try #require(ISO8601DateFormatter().date(from: String(time.prefix(19)) + "Z"))
        #expect(UInt64(seconds.timeIntervalSince1970) == kept.unixNanos / 1_000_000_000)
        #expect(time.hasSuffix(String(format: ".%09lluZ", kept.unixNanos % 1_000_000_000)), "\(time)")

        let text = try await TxlogBinary.run(["tm", "audit", f.dir])
        #expect(text.status == 0, "\(text.summary)")
        #expect(text.out == """
            tm \(f.tm)  stream ktm  1 forced outcome(s)
              \(kept.lsn)  tx \(f.tx)  rollback  \(time)  by "tester"  reason "superior lost"

            """, "\(text.summary)")
        #expect(try Self.contents(f.dir) == untouched, "tm audit changed the log")
    }

    @Test("dump decodes a checkpoint written in parts (its part records and its index); tm list reassembles it")
    func dumpOfACheckpointInParts() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tm-tool-parts-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var options = LogCreateOptions(containerSize: 1 << 20, containerCount: 2, blockSize: 8192)
        options.maxRecordSize = 4096
        let log = try LogStore.create(at: dir, options: options)
        let tm = try TransactionManager.create(log: log)
        try tm.recover()
        // Three RMs with 2000-byte descriptions: a checkpoint of about 6 KiB, two parts of at most 4068 bytes.
        for i in 0..<3 { _ = try tm.createResourceManager(description: String(repeating: "\(i)", count: 2000)) { _ in } }
        let index = try tm.checkpoint()
        try log.close()

        let dump = try await TxlogBinary.run(["dump", dir, "--stream", "ktm", "--json"])
        #expect(dump.status == 0, "\(dump.summary)")
        let decoded = Self.decodedTM(dump)
        #expect(decoded.compactMap { $0["kind"] as? String }.suffix(3) == ["checkpoint-part", "checkpoint-part", "checkpoint-index"])
        let texts = decoded.compactMap { $0["text"] as? String }.suffix(3).map { String($0) }
        try #require(texts.count == 3, "\(dump.summary)")
        #expect(texts[0].hasPrefix("checkpoint-part 1 of 2 4068 bytes clock "), "\(texts[0])")
        #expect(texts[1].hasPrefix("checkpoint-part 2 of 2 "), "\(texts[1])")
        #expect(texts[2].hasPrefix("checkpoint-index tm \(tm.id) 2 parts "), "\(texts[2])")
        let text = try await TxlogBinary.run(["dump", dir, "--stream", "ktm", "--kind", "tm:checkpoint-index"])
        #expect(text.status == 0 && text.out.hasPrefix("\(index)\trestart\t"), "\(text.summary)")
        #expect(text.out.contains("\ttm: checkpoint-index tm \(tm.id) 2 parts "), "\(text.summary)")
        let list = try await TxlogBinary.run(["tm", "list", dir, "--json"])
        #expect(list.status == 0, "\(list.summary)")
        #expect(list.array.first?["resourceManagersAtCheckpoint"] as? Int == 3, "\(list.summary)")
    }
}
