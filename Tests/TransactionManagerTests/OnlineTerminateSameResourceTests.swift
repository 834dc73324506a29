// Online and terminate again and again (150 times) on one OnlineResource object, as a cluster monitor
// does, over a log holding a transaction in doubt, so that every step of going online (the log's open,
// the TM's recovery, the RM's recover and in-doubt notifications) can be cut short: after each terminate
// nothing of the log is open in this process, its lock is free, and the next online comes up.

import Foundation
import LogStore
import Testing
@testable import TransactionManager

#if canImport(Glibc)
import Glibc
#endif

@Suite struct OnlineTerminateSameResourceTests {
    @Test(.hangGuard) func repeatedOnlineAndTerminateOnOneResource() async throws {
        let dir = OnlineResourceTests.temporaryLog("same")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let rmID = GUID.random()
        // A crash left a transaction in doubt.
        let inDoubt = try await OnlineResourceTests.logWithATransactionInDoubt(dir, rm: rmID)
        var config = OnlineResource.Configuration(logDirectory: dir, resourceManagers: [OnlineResourceTests.answeringRM(rmID)])
        config.onlineBudget = .zero
        let statuses = StatusLog()
        let resource = OnlineResource(config) { statuses.add($0) }
        let (problems, outcomes) = await onOwnThread { () -> ([String], [String: Int]) in
            var problems: [String] = []
            var outcomes: [String: Int] = [:]
            for i in 0..<150 {
                let result: String
                do { result = try resource.online().rawValue } catch let e as LogError { result = e.code.rawValue } catch { result = "\(error)" }
                outcomes[result, default: 0] += 1
                usleep(UInt32.random(in: 0..<4000))
                resource.terminate()
                if resource.currentStatus != .terminated { problems.append("\(i): status \(resource.currentStatus)") }
                let open = openDescriptors(under: dir)
                if !open.isEmpty { problems.append("\(i): still open: \(open)") }
                if i % 50 == 49 {
                    // The log's lock is free: a writable open succeeds.
                    do { try LogStore.open(at: dir).close() } catch { problems.append("\(i): the log does not open: \(error)") }
                }
            }
            return (problems, outcomes)
        }
        #expect(problems.isEmpty, "\(problems.prefix(5))")
        // How far the onlines got before their terminate (the steps reported), for the record.
        var reached: [String: Int] = [:]
        for case .onlinePending(let step, _) in statuses.all { reached[String(step.prefix(24)), default: 0] += 1 }
        reached["online", default: 0] = statuses.all.filter { $0 == .online }.count
        print("online/terminate on one resource: \(outcomes.sorted { $0.key < $1.key }), steps reported: \(reached.sorted { $0.key < $1.key })")
        #expect(outcomes.values.reduce(0, +) == 150)
        // The same object, left alone, comes up, with the transaction still in doubt.
        _ = try await onOwnThread { try resource.online() }
        #expect(await resource.waitUntilSettled() == .online)
        let tm = try #require(resource.transactionManager)
        #expect(tm.inDoubtTransactions().map(\.id) == [inDoubt])
        try await onOwnThread { try resource.offline() }
        #expect(openDescriptors(under: dir).isEmpty)
    }
}
