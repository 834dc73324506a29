import Foundation
import LogStore
import Testing
import TxLogTestSupport

/// txlog's exit codes are one stable table (docs/tools/txlog.md, "Exit codes"): 1 is damage and nothing
/// else, and an error after the log opened has the code of its `LogError` code.
@Suite("txlog exit codes", .serialized)
struct ToolExitCodeTests {
    typealias H = HostileToolLog

    /// Errors after the log opened (a container or stream that is not there, a refused change) exited 1,
    /// the code that says the log is damaged, so a script could not tell them from corruption.
    @Test("errors after the log opened have their own exit codes, never 1 (corruption)")
    func exitCodesAfterOpening() async throws {
        let scratch = try H.scratch()
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let log = try H.makeLog(in: scratch)
        let missingContainer = ["containers", "remove", log, "77"]
        let e = try await H.run(missingContainer, scratch)
        H.noTrap(e, missingContainer)
        #expect(e.status == 3 && e.stderr.hasPrefix("txlog: not-found:"), "\(missingContainer): status \(e.status), \(e.stderr)")
        // The container being written cannot be removed now: a refusal in the log's state (8), not a usage
        // error (it was `invalid-argument`, exit 64, where the docs promise 8).
        let reader = try LogStore.open(at: log, options: LogOpenOptions(readOnly: true))
        let written = try #require(reader.info().containers.filter { $0.state.holdsData }.max { $0.logicalID < $1.logicalID })
        try reader.close()
        let busy = ["containers", "remove", log, "\(written.physicalID)"]
        let refused = try await H.run(busy, scratch)
        #expect(refused.status == 8 && refused.stderr.hasPrefix("txlog: invalid-state:"), "\(busy): status \(refused.status), \(refused.stderr)")
        // A stream that holds no restart area is no TM's: not found, not damage.
        for command in ["transactions", "audit"] {
            let args = ["tm", command, log, "--stream", "plain"]
            let r = try await H.run(args, scratch)
            #expect(r.status == 3 && r.stderr.hasPrefix("txlog: not-found:"), "\(args): status \(r.status), \(r.stderr)")
        }
        // Locked while another writer has it: 2 like every failure to open, with the code in the message.
        let writer = try LogStore.open(at: log)
        let locked = try await H.run(["containers", "add", log], scratch)
        #expect(locked.status == 2 && locked.stderr.hasPrefix("txlog: locked:"), "\(locked.status) \(locked.stderr)")
        try writer.close()
    }

    /// `tm transactions --stream orders`, where `orders` is a stream whose restart area is some other
    /// program's checkpoint, said `corrupt:` with exit 1, the code for a damaged log. The stream is not a
    /// TM's: `not-found` with its exit code, and the log is not called damaged.
    @Test("tm transactions/audit on a stream that is not a TM's: not-found (exit 3), not corruption")
    func tmOnOtherStreams() async throws {
        let scratch = try H.scratch()
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let log = try H.makeLog(in: scratch)
        for command in ["transactions", "audit"] {
            for stream in ["orders", "plain", "nosuch"] {
                let args = ["tm", command, log, "--stream", stream]
                let e = try await H.run(args, scratch)
                H.noTrap(e, args)
                #expect(e.status == 3, "\(args): status \(e.status), \(e.stderr)")
                #expect(e.stderr.hasPrefix("txlog: not-found:") && !e.stderr.contains("corrupt"), "\(args): \(e.stderr)")
                #expect(e.stderr.split(separator: "\n").count == 1, "\(args): \(e.stderr)")
            }
        }
        let orders = try await H.run(["tm", "transactions", log, "--stream", "orders"], scratch)
        #expect(orders.stderr.contains("not a transaction manager's stream"), "\(orders.stderr)")
        // The log is not damaged.
        #expect(try await H.run(["verify", log], scratch).status == 0)
    }

    /// A directory where the base file belongs: every read command said "txlog: io: pread failed: Is a
    /// directory [errno 21]", naming no file. The message names the base file.
    @Test("a base file that cannot be read (a directory): exit 2, and the message names the file")
    func unreadableBaseFileIsNamed() async throws {
        let scratch = try H.scratch()
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let log = try H.makeLog(in: scratch)
        try FileManager.default.removeItem(atPath: log + "/txlog.base")
        try FileManager.default.createDirectory(atPath: log + "/txlog.base", withIntermediateDirectories: false)
        for args in [["info", log], ["verify", log, "--json"], ["dump", log], ["tm", "list", log]] {
            let e = try await H.run(args, scratch)
            H.noTrap(e, args)
            #expect(e.status == 2 && e.stdout.isEmpty, "\(args): status \(e.status)")
            #expect(e.stderr.hasPrefix("txlog: io: ") && e.stderr.contains("path \(log)/txlog.base") && e.stderr.split(separator: "\n").count == 1,
                    "\(args): \(e.stderr)")
        }
    }

    /// `tm list` of a log whose TM stream is damaged after its checkpoint printed the TM with "cannot
    /// replay: corrupt: …" and exited 0: a script saw a clean log. The list is still printed (text and
    /// JSON, with `error`), then exit 1 with one line on stderr.
    @Test("tm list: a TM whose stream cannot be replayed (damage after its checkpoint) is listed, and the exit code is 1")
    func tmListOfDamagedTM() async throws {
        let scratch = try H.scratch()
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let work = try await ToolGolden.workingCopy()
        defer { try? FileManager.default.removeItem(at: work) }
        let log = work.appendingPathComponent(ToolGolden.logName).path
        // The block of the first record after the TM's checkpoint.
        let dump = try await H.run(["dump", log, "--stream", "ktm", "--json"], scratch)
        let records = dump.stdout.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        let afterCheckpoint = try #require(records.drop { $0["type"] as? String != "restart" }.dropFirst().first?["lsn"] as? String)
        let lsn = try #require(LSN(afterCheckpoint))
        let reader = try LogStore.open(at: log, options: LogOpenOptions(readOnly: true))
        let container = try #require(reader.info().containers.first { $0.state.holdsData && $0.logicalID == lsn.container })
        try reader.close()
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: container.path))
        try handle.seek(toOffset: lsn.blockOffset + 48)
        let byte = try #require(try handle.read(upToCount: 1)?.first)
        try handle.seek(toOffset: lsn.blockOffset + 48)
        try handle.write(contentsOf: Data([byte ^ 0x5A]))
        try handle.close()

        let text = try await H.run(["tm", "list", log], scratch)
        H.noTrap(text, ["tm", "list"])
        #expect(text.status == 1 && text.stdout.contains("cannot replay: corrupt:"), "\(text.status) \(text.stdout)")
        #expect(text.stderr == "txlog: corrupt: 1 transaction manager cannot be replayed (stream ktm); run txlog verify\n", "\(text.stderr)")
        let json = try await H.run(["tm", "list", log, "--json"], scratch)
        let entries = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [[String: Any]]
        #expect(json.status == 1 && entries?.count == 1 && (entries?.first?["error"] as? String)?.hasPrefix("corrupt:") == true, "\(json.stdout)")
    }
}
