// The cluster-resource contract: online within the budget or pending, terminate racing online,
// failure signal, cached liveness checks.

import Foundation
import LogStore
import Testing
@testable import TransactionManager

#if canImport(Glibc)
import Glibc
#endif

@Suite struct OnlineResourceTests {
    static func temporaryLog(_ tag: String) -> String {
        NSTemporaryDirectory() + "/txlog-online-\(tag)-\(UUID().uuidString)"
    }

    static let smallLog = LogCreateOptions(containerSize: 1 << 20, containerCount: 2, blockSize: 8192)

    static func answeringRM(_ id: GUID) -> OnlineResource.ResourceManagerSpec {
        .init(id: id, description: "answers everything", handler: answerAtOnce)
    }

    @Test func onlineWithinBudgetThenTransactionsWork() async throws {
        let dir = Self.temporaryLog("fast")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let rmID = GUID.random()
        var config = OnlineResource.Configuration(logDirectory: dir, createOptions: Self.smallLog, resourceManagers: [Self.answeringRM(rmID)])
        config.onlineBudget = .seconds(10)
        let resource = OnlineResource(config)
        #expect(!resource.looksAlive)
        #expect(try resource.online() == .online)
        #expect(resource.looksAlive)
        #expect(resource.isAlive())
        let tm = try #require(resource.transactionManager)
        let rm = try #require(resource.resourceManager(rmID))
        let tx = try tm.createTransaction()
        _ = try rm.enlist(tx)
        try await tx.commit()
        #expect(tx.outcome == .committed)
        try resource.offline()
        #expect(!resource.looksAlive)
        #expect(resource.currentStatus == .offline)
        // A second online of the same resource works after offline.
        #expect(try resource.online() == .online)
        resource.terminate()
        #expect(resource.currentStatus == .terminated)
    }

    /// Terminate while a commit waits for an RM's prepare answer: the commit returns (`closed`, presumed
    /// abort) instead of waiting forever, and the log comes online again without the transaction.
    @Test func terminateWithACommitInFlight() async throws {
        let dir = Self.temporaryLog("inflight")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let slowID = GUID.random(), fastID = GUID.random()
        // Answers pre-prepare, never prepare.
        let slow = OnlineResource.ResourceManagerSpec(id: slowID, description: "never prepares") { n in
            if n.kind == .prePrepare { try? n.enlistment?.prePrepareComplete() }
            if n.kind == .recover { try? n.enlistment?.recover() }
        }
        var config = OnlineResource.Configuration(
            logDirectory: dir, createOptions: Self.smallLog, resourceManagers: [Self.answeringRM(fastID), slow])
        config.onlineBudget = .seconds(10)
        let resource = OnlineResource(config)
        #expect(try resource.online() == .online)
        let tm = try #require(resource.transactionManager)
        let tx = try tm.createTransaction()
        _ = try #require(resource.resourceManager(fastID)).enlist(tx)
        _ = try #require(resource.resourceManager(slowID)).enlist(tx)
        let commit = BackgroundCall { try await tx.commit() }
        #expect(await eventually { tx.state == .preparing })
        resource.terminate()
        #expect(resource.currentStatus == .terminated)
        let error = await commit.expectLogError(.closed, "commit after terminate")
        #expect(error?.message.contains("presumed abort") == true, "\(String(describing: error))")

        config.createOptions = nil
        let again = OnlineResource(config)
        #expect(try again.online() == .online)
        defer { again.terminate() }
        let tm2 = try #require(again.transactionManager)
        #expect(tm2.transactionSnapshots().isEmpty, "nothing was decided: presumed abort")
    }

    @Test func slowRecoveryReportsPendingWithProgressThenOnline() async throws {
        let dir = Self.temporaryLog("slow")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // A TM stream with many records after its checkpoint: recovery has real work to do.
        do {
            let log = try LogStore.create(at: dir, options: LogCreateOptions(containerSize: 8 << 20, containerCount: 2, blockSize: 65536))
            let tm = try TransactionManager.create(log: log, options: { var o = TransactionManagerOptions(); o.checkpointEveryRecords = 0; return o }())
            try tm.recover()
            for i in 0..<3000 { try tm.append(.end(GUID(high: 1, low: UInt64(i)))) }
            try await log.flush()
            try log.close()
        }
        let statuses = StatusLog()
        var config = OnlineResource.Configuration(logDirectory: dir)
        config.onlineBudget = .zero
        let resource = OnlineResource(config) { statuses.add($0) }
        #expect(try resource.online() == .pending)
        #expect(await resource.waitUntilSettled() == .online)
        let checkpoints = statuses.all.compactMap { s -> Int? in
            if case .onlinePending(_, let c) = s { return c }
            return nil
        }
        #expect(checkpoints.count >= 5)
        #expect(checkpoints == checkpoints.sorted())
        #expect(resource.transactionManager?.lastRecovery.recordsScanned == 3000)
        resource.terminate()
    }

    @Test func terminateWhilePendingCancelsAndLeavesTheLogRecoverable() async throws {
        let dir = Self.temporaryLog("cancel")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        do {
            let log = try LogStore.create(at: dir, options: LogCreateOptions(containerSize: 8 << 20, containerCount: 2, blockSize: 65536))
            let tm = try TransactionManager.create(log: log, options: { var o = TransactionManagerOptions(); o.checkpointEveryRecords = 0; return o }())
            try tm.recover()
            for i in 0..<20000 { try tm.append(.end(GUID(high: 2, low: UInt64(i)))) }
            try await log.flush()
            try log.close()
        }
        var config = OnlineResource.Configuration(logDirectory: dir)
        config.onlineBudget = .zero
        let resource = OnlineResource(config)
        #expect(try resource.online() == .pending)
        resource.terminate()
        #expect(resource.currentStatus == .terminated)
        #expect(!resource.looksAlive)
        #expect(!resource.isAlive())
        // Recoverable: a fresh open recovers every record.
        let log = try LogStore.open(at: dir)
        let tm = try TransactionManager.open(log: log)
        try tm.recover()
        #expect(tm.lastRecovery.recordsScanned == 20000)
        try log.close()
    }

    /// 1000 races of online against terminate, from two threads, with random offsets.
    @Test func onlineRacesTerminate() throws {
        let dir = Self.temporaryLog("race")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let rmID = GUID.random()
        var config = OnlineResource.Configuration(logDirectory: dir, createOptions: Self.smallLog, resourceManagers: [Self.answeringRM(rmID)])
        config.onlineBudget = .milliseconds(300)
        var outcomes: [String: Int] = [:]
        var rng = SystemRandomNumberGenerator()
        for i in 0..<1000 {
            let resource = OnlineResource(config)
            let delay = UInt32.random(in: 0..<1500, using: &rng)
            let onlineResult = ResultBox()
            let group = DispatchGroup()
            DispatchQueue.global().async(group: group) {
                do { onlineResult.set(try resource.online().rawValue) } catch let e as LogError { onlineResult.set(e.code.rawValue) } catch {
                    onlineResult.set("\(error)")
                }
            }
            DispatchQueue.global().async(group: group) {
                usleep(delay)
                resource.terminate()
            }
            group.wait()
            // online() may have started after terminate: terminate it again, as a monitor would.
            resource.terminate()
            #expect(resource.currentStatus == .terminated, "iteration \(i)")
            #expect(!resource.looksAlive)
            outcomes[onlineResult.value ?? "none", default: 0] += 1
            if i % 100 == 99, FileManager.default.fileExists(atPath: dir + "/txlog.base") {
                // The log opens and recovers cleanly after every hundredth race. Creating the log and the
                // TM can be cancelled too, so on a slow machine the races may not have got as far as the
                // TM's stream yet (openOrCreate also finishes a TM create that stopped half-way).
                let log = try LogStore.open(at: dir)
                let tm = try TransactionManager.openOrCreate(log: log)
                try tm.recover()
                try log.close()
            }
        }
        // After every race, an online left alone comes up.
        let last = OnlineResource(config)
        _ = try last.online()
        let deadline = Date().addingTimeInterval(60)
        while case .onlinePending = last.currentStatus, Date() < deadline { usleep(1000) }
        #expect(last.currentStatus == .online)
        try last.offline()
        print("online/terminate race outcomes: \(outcomes.sorted { $0.key < $1.key })")
        #expect(outcomes.values.reduce(0, +) == 1000)
        #expect(Set(outcomes.keys).isSubset(of: ["online", "pending", "terminated", "invalid-state"]), "\(outcomes)")
    }

    @Test func failureSignalFiresWhenTheLogFails() async throws {
        let dir = Self.temporaryLog("fail")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let io = FailingSyncIO()
        var config = OnlineResource.Configuration(logDirectory: dir, createOptions: Self.smallLog)
        config.io = io
        config.onlineBudget = .seconds(10)
        let resource = OnlineResource(config)
        let signalled = ResultBox()
        resource.onFailure { e in signalled.set(e.code.rawValue) }
        #expect(try resource.online() == .online)
        let tm = try #require(resource.transactionManager)
        io.failSyncs.set(true)
        #expect(throws: LogError.self) { _ = try tm.checkpoint() }
        _ = await eventually { signalled.value != nil }
        #expect(signalled.value == "failed")
        #expect(!resource.isAlive())
        #expect(!resource.looksAlive)

        // Online again, in the same process: the failed log is closed first. Before, it still held the
        // log's lock and the second online() failed with `locked`.
        io.failSyncs.set(false)
        #expect(try resource.online() == .online)
        #expect(resource.isAlive())
        resource.terminate()
    }

    /// A status handler may call terminate(): on the final report, and on a progress report while the
    /// worker runs. Before, terminate() waited for the worker, which was waiting for the handler: a
    /// deadlock, with the resource left online.
    @Test(arguments: ["starting", "online", "progress"]) func terminateFromTheStatusHandler(on trigger: String) async throws {
        let dir = Self.temporaryLog("handler-\(trigger)")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var config = OnlineResource.Configuration(logDirectory: dir, createOptions: Self.smallLog)
        config.onlineBudget = .seconds(10)
        let box = ResourceBox()
        let statuses = StatusLog()
        let resource = OnlineResource(config) { s in
            statuses.add(s)
            switch s {
            case .online where trigger == "online": box.value?.terminate()
            case .onlinePending(let step, _) where trigger == "starting" && step == "starting": box.value?.terminate()
            case .onlinePending(let step, _) where trigger == "progress" && step == "recover transaction manager": box.value?.terminate()
            default: break
            }
        }
        box.set(resource)
        let call = BackgroundCall { () async throws -> OnlineResource.OnlineResult? in
            try await withCheckedThrowingContinuation { c in
                Thread { c.resume(with: Result { try? resource.online() }) }.start()
            }
        }
        await call.expectSuccess("online()")
        #expect(await eventually { resource.currentStatus == .terminated }, "status \(resource.currentStatus)")
        #expect(await eventually { statuses.all.last == .terminated }, "the last report: \(String(describing: statuses.all.last))")
        // The log's lock is free again: it opens (cancelled at "starting", no log was made).
        if trigger != "starting" { try LogStore.open(at: dir).close() }
    }
}

extension OnlineResourceTests {
    /// A status handler calling offline() on a progress report (on the worker's thread): offline()
    /// waited for the worker, which was waiting for the handler, and online() never returned. It is
    /// refused now (`invalid-state`, "call terminate() there") and going online carries on.
    @Test(.hangGuard) func offlineFromAProgressReportIsRefused() async throws {
        let dir = Self.temporaryLog("handler-offline")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var config = OnlineResource.Configuration(logDirectory: dir, createOptions: Self.smallLog)
        config.onlineBudget = .seconds(10)
        let box = ResourceBox()
        let offlineResult = ResultBox()
        let resource = OnlineResource(config) { s in
            guard case .onlinePending(let step, _) = s, step == "recover transaction manager" else { return }
            do {
                try box.value?.offline()
                offlineResult.set("returned")
            } catch {
                offlineResult.set((error as? LogError)?.code.rawValue ?? "\(error)")
            }
        }
        box.set(resource)
        let call = BackgroundCall { () async throws -> OnlineResource.OnlineResult? in
            try await withCheckedThrowingContinuation { c in
                Thread { c.resume(with: Result { try? resource.online() }) }.start()
            }
        }
        // Without the check the worker stays deadlocked: the test ends here rather than hang in terminate().
        guard await call.expectSuccess("online()") != nil else { return }
        #expect(offlineResult.value == LogError.Code.invalidState.rawValue)
        #expect(resource.currentStatus == .online)
        resource.terminate()
        #expect(resource.currentStatus == .terminated)
    }
}

extension OnlineResourceTests {
    /// A budget too long to count in nanoseconds (a caller's "wait as long as it takes") trapped in
    /// online(): the conversion to nanoseconds overflowed a UInt64. It now counts as the longest wait.
    @Test(arguments: [Duration.seconds(Int64.max), .seconds(1 << 40)]) func aHugeBudgetWaitsInsteadOfTrapping(_ budget: Duration) async throws {
        let dir = Self.temporaryLog("huge-budget")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var config = OnlineResource.Configuration(logDirectory: dir, createOptions: Self.smallLog)
        config.onlineBudget = budget
        let resource = OnlineResource(config)
        let result = try await onOwnThread { try resource.online() }
        #expect(result == .online)
        resource.terminate()
    }
}

final class ResourceBox: @unchecked Sendable {
    private let lock = NSLock()
    private var resource: OnlineResource?
    func set(_ r: OnlineResource) { lock.withLock { resource = r } }
    var value: OnlineResource? { lock.withLock { resource } }
}

final class StatusLog: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [OnlineResource.Status] = []
    func add(_ s: OnlineResource.Status) { lock.withLock { items.append(s) } }
    var all: [OnlineResource.Status] { lock.withLock { items } }
}

final class ResultBox: @unchecked Sendable {
    private let lock = NSLock()
    private var v: String?
    func set(_ s: String) { lock.withLock { if v == nil { v = s } } }
    var value: String? { lock.withLock { v } }
}

final class Flag: @unchecked Sendable {
    private let lock = NSLock()
    private var v = false
    func set(_ b: Bool) { lock.withLock { v = b } }
    var value: Bool { lock.withLock { v } }
}

/// PosixFileIO whose data syncs fail with EIO once `failSyncs` is set.
final class FailingSyncIO: ForwardingFileIO, @unchecked Sendable {
    let base: any FileIO = PosixFileIO()
    let failSyncs = Flag()
    func fdatasync(_ fd: Int32) throws {
        if failSyncs.value { throw LogError(.io, "injected fdatasync failure", errno: EIO) }
        try base.fdatasync(fd)
    }
}

extension OnlineResourceTests {
    /// offline() completing while the worker was between deciding to report `online` and reporting it
    /// reported `offline` first: the status handler's last word was `online`, for a resource that was
    /// offline. It now leaves its report to the worker, which makes it after `online`.
    @Test(.hangGuard) func offlineDuringTheFinalReportIsReportedLast() async throws {
        let dir = Self.temporaryLog("offline-final-report")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var config = OnlineResource.Configuration(logDirectory: dir, createOptions: Self.smallLog)
        config.onlineBudget = .seconds(10)
        let statuses = StatusLog()
        let resource = OnlineResource(config) { statuses.add($0) }
        let atFinalReport = DispatchSemaphore(value: 0)
        let goOn = DispatchSemaphore(value: 0)
        resource.beforeFinalReportForTesting = {
            atFinalReport.signal()
            goOn.wait()
        }
        let onlineResult = try await onOwnThread { () throws -> String? in
            let online = DispatchSemaphore(value: 0)
            let box = ResultBox()
            Thread {
                do { box.set("\(try resource.online())") } catch { box.set("\(error)") }
                online.signal()
            }.start()
            atFinalReport.wait()  // the worker is done and about to report `online`
            online.wait()  // online() returned (it waited for the worker only)
            try resource.offline()
            goOn.signal()
            return box.value
        }
        #expect(onlineResult == "online")
        #expect(resource.currentStatus == .offline)
        #expect(await eventually { statuses.all.last == .offline && statuses.all.contains(.online) }, "\(statuses.all)")
        #expect(statuses.all.filter { $0 == .offline }.count == 1, "\(statuses.all)")
    }
}
