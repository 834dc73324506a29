// Creating a resource manager while its TM stops (close, or terminate's stop): the registration record
// is flushed outside the TM's lock, and the RM was then put into the stopped TM's table after the
// stop had closed every RM there. It stayed offline instead of closed, its notification sequence
// never finished, and it and its TM kept each other in memory.

import Foundation
import LogStore
import Testing
@testable import TransactionManager

@Suite struct CreateResourceManagerRacingCloseTests {
    @Test func anRMWhoseCreateOutlivesItsTMIsClosed() async throws {
        let scratch = TMScratch("create-vs-stop")
        defer { scratch.remove() }
        let gate = GateIO(holding: .syncs)
        let log = try LogStore.create(at: scratch.path, options: TMScratch.options, openOptions: LogOpenOptions(), io: gate)
        defer { try? log.close() }
        let tm = try TransactionManager.create(log: log)
        try tm.recover()
        gate.close()
        let created = Task(executorPreference: OwnThreadExecutor()) { () -> Result<ResourceManager, any Error> in
            Result { try tm.createResourceManager(description: "late") }
        }
        // The registration record waits for its flush.
        #expect(await eventually { tm.lock.withLock { !tm.registeringRMs.isEmpty } })
        tm.stop()
        gate.open()
        switch await created.value {
        case .failure(let e):
            #expect((e as? LogError)?.code == .notOnline)
        case .success(let rm):
            Issue.record("created on a stopped TM: \(rm.currentState)")
            #expect(rm.currentState == .closed)
        }
        #expect(tm.lock.withLock { tm.resourceManagers.isEmpty })
    }
    /// The log closed between the registration record's append and its flush (test hook): the close
    /// made the record durable, so the RM is registered (recovery finds it, a create of its id is
    /// refused), but the create threw the flush's bare "the log is closed", which reads as "not
    /// created". It says now that the RM is registered.
    @Test(.hangGuard) func registrationMadeDurableByTheLogsCloseIsReported() async throws {
        let scratch = TMScratch("create-vs-log-close")
        defer { scratch.remove() }
        let (log, tm) = try scratch.createOnline()
        tm.afterRegistrationAppendForTesting = { try? log.close() }
        let id = GUID.random()
        let error = try #require(Result { try tm.createResourceManager(id: id, description: "late") }.failureAsLogError)
        tm.afterRegistrationAppendForTesting = nil
        #expect(error.code == .closed)
        #expect(error.message.contains("is registered"), "the error does not say the registration is durable: \(error)")

        let (log2, tm2) = try scratch.reopenOnline()
        defer { try? log2.close() }
        #expect(tm2.registeredResourceManagers.map(\.id) == [id])
        let rm = try tm2.openResourceManager(id: id)
        rm.close()
    }
}


extension Result {
    /// The error, if the call threw a `LogError`.
    fileprivate var failureAsLogError: LogError? {
        if case .failure(let e) = self { return e as? LogError }
        return nil
    }
}
