// Terminate while the online worker is inside a resource manager's handler that does not return (it
// blocks until the test lets it go): terminate returns anyway, leaves the log closed and its lock free,
// the handler's late return finds its TM stopped (typed errors, no crash, no status report), and the
// same resource comes online again meanwhile.

import Dispatch
import Foundation
import LogStore
import Testing
@testable import TransactionManager

#if canImport(Glibc)
import Glibc
#endif

@Suite struct TerminateHungHandlerTests {
    /// What the blocking RM's handler saw.
    final class HandlerLog: @unchecked Sendable {
        let lock = NSLock()
        let gate = DispatchSemaphore(value: 0)
        private var blockedOnce = false
        private(set) var entered = false
        private(set) var returned = false
        private(set) var lateAnswer: String?

        /// The first recover notification blocks until `gate` is signalled, then answers; later ones answer at once.
        func handle(_ n: TransactionNotification) {
            let block = lock.withLock { () -> Bool in
                guard n.kind == .recover, !blockedOnce else { return false }
                blockedOnce = true
                entered = true
                return true
            }
            guard block else { return answerAtOnce(n) }
            gate.wait()
            let answer: String
            do {
                try n.enlistment?.recover()
                answer = "answered"
            } catch let e as LogError { answer = e.code.rawValue } catch { answer = "\(error)" }
            lock.withLock {
                lateAnswer = answer
                returned = true
            }
        }

        var hasEntered: Bool { lock.withLock { entered } }
        var hasReturned: Bool { lock.withLock { returned } }
        var answer: String? { lock.withLock { lateAnswer } }
    }

    final class Flag: @unchecked Sendable {
        private let lock = NSLock()
        private var value: String?
        func set(_ s: String) { lock.withLock { if value == nil { value = s } } }
        var get: String? { lock.withLock { value } }
    }

    @Test func terminateLeavesAHandlerThatDoesNotReturnBehind() async throws {
        let dir = OnlineResourceTests.temporaryLog("hung-handler")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let rmID = GUID.random()
        let inDoubt = try await OnlineResourceTests.logWithATransactionInDoubt(dir, rm: rmID)
        let handler = HandlerLog()
        var config = OnlineResource.Configuration(
            logDirectory: dir, resourceManagers: [.init(id: rmID, description: "blocks once") { handler.handle($0) }])
        // online() waits as long as going online takes: terminate must release it too.
        config.onlineBudget = .seconds(Int64.max)
        config.terminateGrace = .milliseconds(20)
        let statuses = StatusLog()
        let resource = OnlineResource(config) { statuses.add($0) }
        let onlineResult = Flag()
        Thread {
            do { onlineResult.set(try resource.online().rawValue) } catch let e as LogError { onlineResult.set(e.code.rawValue) } catch {
                onlineResult.set("\(error)")
            }
        }.start()
        #expect(await eventually(within: 60) { handler.hasEntered })

        let terminated = Flag()
        Thread {
            resource.terminate()
            terminated.set("returned")
        }.start()
        // Bounded by this test, not by the handler: before, terminate waited for the handler for ever.
        let terminateReturned = await eventually(within: 60) { terminated.get != nil }
        let onlineReturned = await eventually(within: 60) { onlineResult.get != nil }
        #expect(terminateReturned, "terminate() waited for the resource manager's handler")
        #expect(onlineReturned, "online() waited for the resource manager's handler")
        #expect(!handler.hasReturned)
        #expect(onlineResult.get == LogError.Code.terminated.rawValue)
        #expect(resource.currentStatus == .terminated)
        #expect(resource.transactionManager == nil)
        // Nothing of the log is open while the handler still blocks: the log's lock is free.
        #expect(openDescriptors(under: dir).isEmpty)

        // The same resource comes online again while the old handler still blocks.
        if terminateReturned {
            let again = try await onOwnThread { try resource.online() }
            #expect(again == .online)
            #expect(await resource.waitUntilSettled() == .online)
            let tm = try #require(resource.transactionManager)
            #expect(tm.inDoubtTransactions().map(\.id) == [inDoubt])
            // Its final report is made after the status is set.
            #expect(await eventually(within: 60) { statuses.all.last == .online })
        }

        // The late handler returns into its stopped TM: its answer gets a typed error, the old worker
        // reports nothing, and the new online is untouched.
        let reportsBefore = statuses.all.count
        handler.gate.signal()
        #expect(await eventually(within: 60) { handler.hasReturned })
        #expect(await eventually(within: 60) { resource.workersRunning == 0 })
        #expect(handler.answer == LogError.Code.closed.rawValue, "\(handler.answer ?? "nil")")
        #expect(statuses.all.count == reportsBefore, "\(statuses.all.suffix(3))")
        #expect(statuses.all.filter { $0 == .terminated }.count == 1, "\(statuses.all)")
        if terminateReturned {
            #expect(resource.currentStatus == .online)
            #expect(resource.isAlive())
            try await onOwnThread { try resource.offline() }
        }
        #expect(openDescriptors(under: dir).isEmpty)
    }

    /// offline() waits for a pending online, so behind a handler that does not return it waits too: the
    /// terminate a cluster monitor then sends lets it go as well (before, both waited for ever).
    @Test func terminateAlsoReleasesAnOfflineWaitingBehindTheHandler() async throws {
        let dir = OnlineResourceTests.temporaryLog("hung-offline")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let rmID = GUID.random()
        _ = try await OnlineResourceTests.logWithATransactionInDoubt(dir, rm: rmID)
        let handler = HandlerLog()
        var config = OnlineResource.Configuration(
            logDirectory: dir, resourceManagers: [.init(id: rmID, description: "blocks once") { handler.handle($0) }])
        config.onlineBudget = .zero
        config.terminateGrace = .milliseconds(20)
        let resource = OnlineResource(config)
        #expect(try await onOwnThread { try resource.online() } == .pending)
        #expect(await eventually { handler.hasEntered })
        let offline = Flag()
        Thread {
            do { try resource.offline(); offline.set("returned") } catch { offline.set("\(error)") }
        }.start()
        let terminated = Flag()
        Thread {
            resource.terminate()
            terminated.set("returned")
        }.start()
        let bothReturned = await eventually { terminated.get != nil && offline.get != nil }
        #expect(bothReturned, "terminate: \(terminated.get ?? "waiting"), offline: \(offline.get ?? "waiting")")
        #expect(offline.get == "returned")
        #expect([.terminated, .offline].contains(resource.currentStatus), "\(resource.currentStatus)")
        #expect(openDescriptors(under: dir).isEmpty)
        handler.gate.signal()
        #expect(await eventually { handler.hasReturned && resource.workersRunning == 0 })
        #expect(handler.answer == LogError.Code.closed.rawValue, "\(handler.answer ?? "nil")")
    }

    /// A status handler that blocks in its first `online` report until released.
    final class StuckFirstOnline: @unchecked Sendable {
        private let lock = NSLock()
        private let gate = DispatchSemaphore(value: 0)
        private var blocked = false
        private(set) var statuses: [OnlineResource.Status] = []

        func report(_ s: OnlineResource.Status) {
            let block = lock.withLock { () -> Bool in
                statuses.append(s)
                guard s == .online, !blocked else { return false }
                blocked = true
                return true
            }
            if block { gate.wait() }
        }

        var hasBlocked: Bool { lock.withLock { blocked } }
        var all: [OnlineResource.Status] { lock.withLock { statuses } }
        func release() { gate.signal() }
    }

    /// The worker of an online is stuck reporting `online` (its status handler does not return); a
    /// terminate leaves its `terminated` to that worker; the next online waits for that report and a
    /// terminate leaves it behind; the online after does not wait. Before, that online's worker reported
    /// the first terminate's `terminated` after its own `online` (the resource online), and the worker
    /// left behind reported `onlinePending` once the stuck report returned.
    @Test func aStatusHandlerStuckInTheFinalReportIsNotReportedPastTheNextOnline() async throws {
        let dir = OnlineResourceTests.temporaryLog("stuck-final-report")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var config = OnlineResource.Configuration(logDirectory: dir, createOptions: OnlineResourceTests.smallLog)
        config.onlineBudget = .zero
        config.terminateGrace = .milliseconds(20)
        let handler = StuckFirstOnline()
        defer { handler.release() }
        let resource = OnlineResource(config) { handler.report($0) }
        _ = try await onOwnThread { try resource.online() }
        #expect(await eventually(within: 60) { handler.hasBlocked })
        await onOwnThread { resource.terminate() }
        #expect(try await onOwnThread { try resource.online() } == .pending)  // behind the stuck report
        await onOwnThread { resource.terminate() }  // leaves that worker behind
        _ = try await onOwnThread { try resource.online() }
        #expect(await resource.waitUntilSettled() == .online)
        // The last online's worker is done; the stuck one and the one behind it are left.
        #expect(await eventually(within: 60) { resource.workersRunning == 2 })
        #expect(handler.all.last == .online, "\(handler.all)")
        let reported = handler.all.count
        handler.release()
        #expect(await eventually(within: 60) { resource.workersRunning == 0 })
        #expect(handler.all.count == reported, "\(handler.all.suffix(3))")
        #expect(resource.currentStatus == .online)
        #expect(resource.isAlive())
        try await onOwnThread { try resource.offline() }
        #expect(handler.all.last == .offline, "\(handler.all.suffix(3))")
        #expect(openDescriptors(under: dir).isEmpty)
    }
}

extension OnlineResourceTests {
    /// A log in `dir` whose TM holds a transaction prepared by RM `rm` and left in doubt (the log closed
    /// as by a crash): that RM's recovery sends it a recover notification.
    static func logWithATransactionInDoubt(_ dir: String, rm rmID: GUID) async throws -> GUID {
        let log = try LogStore.create(at: dir, options: OnlineResourceTests.smallLog)
        let tm = try TransactionManager.create(log: log)
        try tm.recover()
        let rm = try tm.createResourceManager(id: rmID, description: "answers", handler: answerAtOnce)
        try rm.recover()
        let tx = try tm.createTransaction()
        _ = try rm.enlist(tx, mask: .twoPhase)
        #expect(try await tx.enlistSuperior().prepare() == .prepared)
        try log.close()
        return tx.id
    }
}
