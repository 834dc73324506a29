// removeContainer is a legal call at any moment: it either removes (or marks) a container or refuses
// with a typed error. It never fails the log, never leaves the log unable to recycle, and never takes
// space that reservations count on.

import Foundation
import Testing
import Synchronization
import TxLogTestSupport
@testable import LogStore

/// A tiny log of `containers` containers of 512 KiB with 4 KiB blocks, stored uncompressed.
private func makeLog(_ tag: String, containers: Int) throws -> (LogStore, String) {
    let dir = LogTestKit.temporaryPath(tag)
    let options = LogCreateOptions(containerSize: 512 * 1024, containerCount: containers, blockSize: 4096, codec: .none)
    return (try LogStore.create(at: dir, options: options), dir)
}

/// Appends 2,000-byte records until the log is two containers past the first record's, and flushes:
/// the first record's container then holds records the base has not passed.
private func fillTwoContainersPast(_ log: LogStore) throws -> (first: LSN, last: LSN) {
    let first = try log.append(LogTestKit.randomPayload(0, length: 2000))
    var last = first
    var i = 1
    while last.container < first.container + 2 {
        last = try log.append(LogTestKit.randomPayload(i, length: 2000))
        i += 1
    }
    try log.flush()
    return (first, last)
}

private func container(_ log: LogStore, logical: UInt32) throws -> LogInfo.Container {
    try #require(log.info().containers.first { $0.logicalID == logical })
}

@Suite("removeContainer: never fails or wedges the log")
struct RemoveContainerTests {
    /// The log had moved its records into containers 2 and 3 in memory, but the writer had not recorded
    /// the switches in the base file: the removal marked a base-file entry that still said "free"
    /// pending delete, recycling deleted its file at once, and the next flush failed the log.
    @Test("A container holding records not yet written is flushed first, then marked pending delete; the log does not fail")
    func removeContainerNotYetSwitched() throws {
        let (log, dir) = try makeLog("remove-unswitched", containers: 4)
        defer { LogTestKit.remove(dir) }
        var written: [(LSN, [UInt8])] = []
        var last = LSN.null
        var i = 0
        while last.container < 3 {  // no flush: the switches to containers 2 and 3 exist only in memory
            let data = LogTestKit.randomPayload(i, length: 3000)
            last = try log.append(data)
            written.append((last, data))
            i += 1
        }
        #expect(log.durableLSN < last)
        let second = try container(log, logical: 2)
        try log.removeContainer(second.physicalID)
        #expect(!log.isFailed, "\(String(describing: log.failure))")
        #expect(log.durableLSN >= last, "the removal made the records it needed durable")
        #expect(try container(log, logical: 2).state == .pendingDelete)
        try log.flush()
        #expect(!log.isFailed, "\(String(describing: log.failure))")
        for (lsn, data) in written { #expect(try log.read(lsn).data == data) }
        // Once the base passes it, the container is deleted, not recycled.
        try log.advanceBase(to: last)
        #expect(!log.info().containers.contains { $0.physicalID == second.physicalID })
        try log.close()
        let again = try LogStore.open(at: dir)
        #expect(try again.read(last).data == written.last?.1)
        #expect(again.info().containers.count == 3)
        try again.close()
    }

    /// A container pending delete used to count toward the minimum of two: with three containers, one
    /// pending delete and the free one removed, recycling would have left one container, and every
    /// base-file update that recycles (advanceBase, close) was refused ("container count 1").
    @Test("Containers pending delete do not count toward the minimum of two; advanceBase and close still work")
    func removeBelowMinimum() throws {
        let (log, dir) = try makeLog("remove-min", containers: 3)
        defer { LogTestKit.remove(dir) }
        var last = LSN.null
        var i = 0
        while last.container < 2 {
            last = try log.append(LogTestKit.randomPayload(i, length: 2000))
            i += 1
        }
        try log.flush()
        let old = try container(log, logical: 1)
        let free = try container(log, logical: 0)
        try log.removeContainer(old.physicalID)  // holds records: pending delete
        try log.removeContainer(old.physicalID)  // already pending: nothing more to do
        let e = FaultTestKit.logError { try log.removeContainer(free.physicalID) }
        #expect(e?.code == .invalidArgument)
        #expect(e?.message.contains("at least 2 containers") == true, "\(String(describing: e))")
        #expect(log.info().containers.count == 3)
        #expect(throws: Never.self) { try log.advanceBase(to: last) }
        #expect(log.info().containers.map(\.physicalID).sorted() == [free.physicalID, try container(log, logical: 2).physicalID].sorted())
        #expect(throws: Never.self) { try log.close() }
        let again = try LogStore.open(at: dir)
        #expect(again.info().containers.count == 2)
        #expect(try again.read(last).data == LogTestKit.randomPayload(i - 1, length: 2000))
        try again.close()
    }

    enum Shrink: String, CaseIterable, Sendable { case removeContainer, autoShrinkPolicy }

    /// A free container could be removed (by hand or by auto-shrink) while reservations counted on it:
    /// the reserved appends then failed with logFull.
    @Test("A free container that reservations need is not removed, by removeContainer or by auto-shrink",
          arguments: Shrink.allCases)
    func removeContainerUnderReservation(_ how: Shrink) throws {
        let (log, dir) = try makeLog("remove-reserved", containers: 4)
        defer { LogTestKit.remove(dir) }
        let s = try log.createStream("undo")
        let size = 3000
        var reserved = 0
        while (try? s.reserve(recordSizes: [size])) != nil { reserved += 1 }
        #expect(reserved > 100)
        let free = log.info().containers.filter { $0.state == .inactive }
        #expect(free.count == 3)
        switch how {
        case .removeContainer:
            for c in free {
                let e = FaultTestKit.logError { try log.removeContainer(c.physicalID) }
                #expect(e?.code == .logFull)
                #expect(e?.message.contains("reservations") == true, "\(String(describing: e))")
            }
        case .autoShrinkPolicy:
            var policy = log.policy
            policy.autoShrinkPercent = 10
            try log.setPolicy(policy)
        }
        #expect(log.info().containers.count == 4)
        for k in 0..<reserved {
            #expect(throws: Never.self, "reserved append #\(k)") { try s.append(LogTestKit.randomPayload(k, length: size), usingReservation: true) }
        }
        #expect(log.info().reservedBytes == 0)
        // With the reservations used, a free container may go again.
        try log.flush()
        if let c = log.info().containers.first(where: { $0.state == .inactive }) { try log.removeContainer(c.physicalID) }
        #expect(!log.isFailed)
        try log.close()
    }
}

@Suite("close() and the deletion of removed containers")
struct CloseWaitsForDeletionsTests {
    /// A base-file update that deleted a container counted its unlinking only after it let go of
    /// `metaLock`: a close() in that gap made its last update, found no deletion to wait for and
    /// returned, and the container's descriptor was closed and its file unlinked afterwards (the
    /// descriptor's number perhaps another file's by then).
    @Test("close() returns only after the containers an update running beside it deleted are unlinked")
    func closeWaitsForAnUpdatesDeletion() async throws {
        struct Seen: Sendable {
            var pendingDelete = false
            var errors: [String] = []
            var leftAfterEarlyClose = false
            var leftAtTheEnd = false
        }
        let errors = Mutex<[String]>([])
        // Issues are recorded after the thread returns, in the test's own context (see onOwnThread).
        let seen: Seen = try await onOwnThread {
            var seen = Seen()
            let (log, dir) = try makeLog("close-deletion", containers: 3)
            defer { LogTestKit.remove(dir) }
            let (first, last) = try fillTwoContainersPast(log)
            guard let old = log.info().containers.first(where: { $0.logicalID == first.container }) else { return seen }
            try log.removeContainer(old.physicalID)  // holds records: pending delete until the base passes it
            seen.pendingDelete = log.info().containers.first { $0.physicalID == old.physicalID }?.state == .pendingDelete

            let parked = DispatchSemaphore(value: 0)
            let release = DispatchSemaphore(value: 0)
            let once = Atomic<Bool>(false)
            log.core.afterMetaUpdateForTesting = { deleted in
                guard deleted > 0, !once.exchange(true, ordering: .relaxed) else { return }
                parked.signal()
                release.wait()
            }
            let advanced = DispatchSemaphore(value: 0)
            let newBase = last
            DispatchQueue.global().async {
                do { try log.advanceBase(to: newBase) } catch { errors.withLock { $0.append("advanceBase: \(error)") } }
                advanced.signal()  // it deleted `old`, and parked before queueing the unlink
            }
            parked.wait()
            let closed = DispatchSemaphore(value: 0)
            DispatchQueue.global().async {
                do { try log.close() } catch { errors.withLock { $0.append("close: \(error)") } }
                closed.signal()
            }
            // Without the fix close() returns at once, with the file still there; with it, it waits for the
            // parked update. The bounded wait only decides when to let the update go.
            if closed.wait(timeout: .now() + 1) == .success {
                seen.leftAfterEarlyClose = FileManager.default.fileExists(atPath: old.path)
                release.signal()
            } else {
                release.signal()
                closed.wait()
                seen.leftAtTheEnd = FileManager.default.fileExists(atPath: old.path)
            }
            advanced.wait()
            seen.errors = errors.withLock { $0 }
            return seen
        }
        #expect(seen.pendingDelete)
        #expect(seen.errors.isEmpty, "\(seen.errors)")
        #expect(!seen.leftAfterEarlyClose, "close() returned before the deleted container was unlinked")
        #expect(!seen.leftAtTheEnd, "the deleted container was not unlinked when close() returned")
    }

    /// The directory sync after those unlinks fails the log (as every sync error does), but close() had
    /// checked for a failure before it waited for them: it returned success for a log that failed while
    /// it closed, and only `isFailed` said so.
    @Test func closeReportsAFailedDirectorySyncOfItsDeletions() throws {
        let dir = LogTestKit.temporaryPath("close-deletion-sync-fails")
        defer { LogTestKit.remove(dir) }
        let io = ParkingIO(parkAt: .directorySync, failAfterRelease: true)
        let log = try LogStore.create(
            at: dir, options: LogCreateOptions(containerSize: 512 * 1024, containerCount: 3, blockSize: 4096, codec: .none), io: io)
        let (first, last) = try fillTwoContainersPast(log)
        let old = try container(log, logical: first.container)
        try log.removeContainer(old.physicalID)  // holds records: pending delete until the base passes it
        io.arm()
        try log.advanceBase(to: last)  // recycles it: unlinked on the deletion queue, then the directory synced
        io.entered.wait()
        let result = LockedBox<String>("running")
        let closer = Thread {
            do { try log.close(); result.withLock { $0 = "ok" } } catch let e as LogError { result.withLock { $0 = e.code.rawValue } } catch {
                result.withLock { $0 = "\(error)" }
            }
        }
        closer.start()
        // The sync fails once close() is under way (a race only in how much of close runs first: the
        // failure comes before close returns either way, since close waits for the deletion).
        usleep(200_000)
        io.release.signal()
        while !closer.isFinished { usleep(1000) }
        #expect(log.isFailed)
        #expect(result.snapshot != "ok", "close() succeeded for a log that failed while it closed")
    }
}
