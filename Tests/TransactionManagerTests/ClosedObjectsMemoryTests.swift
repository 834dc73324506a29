// Closed objects are freed: a log, a TM and its RMs, once closed and dropped, leave nothing behind
// (a process that brings a log online and terminates it again and again must not grow).

import Foundation
import LogStore
import Testing
@testable import TransactionManager

@Suite("Closed objects are freed")
struct ClosedObjectsMemoryTests {
    final class Watch: @unchecked Sendable {
        weak var log: LogStore?
        weak var tm: TransactionManager?
        weak var rm: ResourceManager?
    }

    @Test("a closed log, TM and RM are freed once the caller drops them, whether or not the RM was closed first",
          arguments: [true, false])
    func closedStack(closeRMFirst: Bool) async throws {
        let scratch = TMScratch("closed-stack")
        defer { scratch.remove() }
        let watch = Watch()
        do {
            let (log, tm) = try scratch.createOnline()
            let rm = try tm.createResourceManager(description: "rm", handler: answerAtOnce)
            try rm.recover()
            let tx = try tm.createTransaction()
            _ = try rm.enlist(tx)
            try await tx.commit()
            watch.log = log
            watch.tm = tm
            watch.rm = rm
            if closeRMFirst { rm.close() }
            try tm.close()
            #expect(rm.currentState == .closed, "closing the TM closes its RMs")
            try log.close()
        }
        #expect(watch.rm == nil, "the resource manager is still in memory")
        #expect(watch.tm == nil, "the transaction manager is still in memory")
        #expect(watch.log == nil, "the log is still in memory")
    }

    @Test("an OnlineResource brought online and terminated is freed with everything it opened")
    func onlineTerminate() async throws {
        let scratch = TMScratch("closed-online")
        defer { scratch.remove() }
        weak var weakResource: OnlineResource?
        for _ in 0..<3 {
            do {
                let config = OnlineResource.Configuration(
                    logDirectory: scratch.path, createOptions: TMScratch.options,
                    resourceManagers: [.init(id: GUID("0d0d0d0d-0000-4000-8000-00000000000d")!, description: "rm", handler: answerAtOnce)])
                let resource = OnlineResource(config)
                weakResource = resource
                _ = try resource.online()
                #expect(await eventually { resource.isAlive() })
                resource.terminate()
            }
            // The online worker reports its final status after terminate() stopped waiting for it, and holds
            // the resource until that report returns: on a loaded machine that can be a moment later.
            #expect(await eventually { weakResource == nil }, "the terminated resource is still in memory")
        }
    }
}
