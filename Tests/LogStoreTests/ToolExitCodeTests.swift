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
}
