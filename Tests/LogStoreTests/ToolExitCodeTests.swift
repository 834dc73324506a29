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
}
