// Terminate while the online worker's own step is stuck in a system call (a hung disk's fsync, held
// here by a closed sync gate while the worker creates the log): terminate returns anyway, the worker
// closes what it opened once the call returns and reports nothing, and the resource comes online again.

import Foundation
import LogStore
import Testing
@testable import TransactionManager

@Suite struct TerminateStuckStepTests {
    @Test(.hangGuard) func terminateLeavesAStepStuckInASyscallBehind() async throws {
        let dir = OnlineResourceTests.temporaryLog("stuck-step")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let gate = GateIO(holding: .syncs)
        gate.close()
        var config = OnlineResource.Configuration(logDirectory: dir, createOptions: OnlineResourceTests.smallLog)
        config.io = gate
        config.onlineBudget = .zero
        config.terminateGrace = .milliseconds(20)
        config.stuckStepGrace = .milliseconds(20)
        let statuses = StatusLog()
        let resource = OnlineResource(config) { statuses.add($0) }
        #expect(try await onOwnThread { try resource.online() } == .pending)
        // The worker is inside the log's create, in a sync that does not return.
        await onOwnThread { gate.waitUntilHolding() }

        let terminated = TerminateHungHandlerTests.Flag()
        Thread {
            resource.terminate()
            terminated.set("returned")
        }.start()
        // Bounded by this test, not by the sync: before, terminate waited for the worker's step for ever.
        let returned = await eventually(within: 60) { terminated.get != nil }
        #expect(returned, "terminate() waited for a step stuck in a system call")
        #expect(resource.currentStatus == .terminated)
        #expect(resource.transactionManager == nil)
        let reportsBefore = statuses.all.count

        // The call returns: the worker closes the log it created and reports nothing.
        gate.open()
        #expect(await eventually(within: 60) { resource.workersRunning == 0 })
        #expect(await eventually(within: 60) { openDescriptors(under: dir).isEmpty })
        #expect(resource.currentStatus == .terminated)
        #expect(statuses.all.count == reportsBefore, "\(statuses.all.suffix(3))")
        #expect(statuses.all.filter { $0 == .terminated }.count == 1, "\(statuses.all)")

        // And the resource comes online again.
        _ = try await onOwnThread { try resource.online() }
        #expect(await resource.waitUntilSettled() == .online)
        try await onOwnThread { try resource.offline() }
        #expect(openDescriptors(under: dir).isEmpty)
    }
}
