// Metadata operations under I/O faults: an operation that throws has changed nothing, or the log is
// failed (sticky); one whose change is durable returns; no file is left that the base file does not name
// (except the documented orphan of an unlink that failed).

import Foundation
import Testing
import TxLogTestSupport
@testable import LogStore

private typealias Kit = FaultTestKit

@Suite("Metadata operations under I/O faults")
struct MetadataFaultTests {
    /// Container files in a simulated directory.
    static func containerFiles(_ disk: SimulatedDisk, _ dir: String) throws -> [String] {
        try disk.listDirectory(dir).filter { $0.hasPrefix("container-") }
    }

    @Test("auto-grow that fails with ENOSPC: the append falls back to the tail-pinned handlers (or logFull), never a bare io error")
    func autoGrowENOSPC() throws {
        let dir = Kit.temporaryPath("growenospc")
        defer { Kit.remove(dir) }
        let io = FaultyFileIO()
        let log = try LogStore.create(at: dir, options: Kit.tinyOptions(containers: 2), io: io)
        var p = LogPolicy()
        p.autoGrow = true
        p.maxContainers = 8
        try log.setPolicy(p)
        log.core.pinnersAheadDisabledForTesting = true  // the log-full path, where auto-grow runs
        let lazy = try log.createStream("lazy")
        lazy.onTailPinned { _ in try? lazy.advanceBase(to: lazy.lastLSN) }
        io.inject(.pwritev, nth: 1, sticky: true, .fail(errno: FaultyFileIO.ENOSPC), pathContains: "container-000002")
        var error: LogError?
        for i in 0..<4000 {
            do { _ = try lazy.append(Kit.payload(i % 4096)) } catch let e as LogError {
                error = e
                break
            }
        }
        #expect(io.faultsFired >= 1)
        #expect(error == nil, "append threw \(String(describing: error))")
        #expect(!log.isFailed)
        try log.close()
    }

    /// A log on a simulated disk whose stream table fills the base-file slot: one more stream does not fit.
    static func logWithFullSlot() throws -> (SimulatedDisk, LogStore, String) {
        let disk = SimulatedDisk()
        try disk.makeDirectory("/sim")
        let dir = "/sim/log"
        let log = try LogStore.create(at: dir, options: Kit.tinyOptions(containers: 2), io: disk)
        var k = 0
        while true {
            let name = String(format: "%05d", k) + String(repeating: "s", count: 250)
            do { _ = try log.createStream(name) } catch let e as LogError {
                #expect(e.code == .invalidArgument)
                break
            }
            k += 1
        }
        return (disk, log, dir)
    }

    @Test("addContainer refused because the base-file slot is full: nothing is left behind (no orphan file)")
    func addContainerRefusedLeavesNoFile() throws {
        let (disk, log, dir) = try Self.logWithFullSlot()
        // Containers are added until one more would not fit the slot either.
        var refused: LogError?
        for _ in 0..<1000 {
            do { _ = try log.addContainer() } catch let e as LogError {
                refused = e
                break
            }
        }
        #expect(refused?.code == .invalidArgument)
        #expect(!log.isFailed)
        let named = Set(log.info().containers.map { URL(fileURLWithPath: $0.path).lastPathComponent })
        let files = Set(try Self.containerFiles(disk, dir))
        #expect(files == named, "files on disk \(files.sorted()), base file names \(named.sorted())")
        let stray = try log.strayFiles()
        #expect(stray.isEmpty, "\(stray)")
        try log.close()
    }

    @Test("auto-grow refused because the base-file slot is full: the append says logFull and leaves no file behind")
    func autoGrowRefusedLeavesNoFile() throws {
        let (disk, log, dir) = try Self.logWithFullSlot()
        // Fill the slot with container entries too, until an add is refused.
        while (try? log.addContainer()) != nil {}
        // One stream goes, to make room for the policy section; auto-grow has no room to name a container.
        let names = log.streams().map(\.name).filter { !$0.isEmpty }
        try log.deleteStream(names[0])
        var p = LogPolicy()
        p.autoGrow = true
        p.growthIncrement = 1
        do { try log.setPolicy(p) } catch { Issue.record("setPolicy: \(error)"); return }
        // Fill the log, holding every record (the default stream's base stays at its first record).
        let record = [UInt8](repeating: 7, count: 3000)
        let first = try log.append(record)
        try log.advanceBase(to: first)
        var error: LogError?
        var n = 0
        while n < 100_000 {
            do { _ = try log.append(record) } catch let e as LogError {
                error = e
                break
            }
            n += 1
        }
        // A few more appends on the full log: each tried to grow (and left a container file behind).
        for _ in 0..<3 { _ = try? log.append(record) }
        let after = Set(try Self.containerFiles(disk, dir))
        let named = Set(log.info().containers.map { URL(fileURLWithPath: $0.path).lastPathComponent })
        #expect(error?.code == .logFull, "\(String(describing: error))")
        #expect(after == named, "left behind: \(after.subtracting(named).sorted())")
        try log.close()
    }

    @Test("removeContainer of a free container whose unlink fails: the removal stands and returns; the file is an orphan")
    func removeFreeUnlinkFails() throws {
        let dir = Kit.temporaryPath("rmunlink")
        defer { Kit.remove(dir) }
        let io = FaultyFileIO()
        let log = try LogStore.create(at: dir, options: Kit.tinyOptions(containers: 3), io: io)
        io.inject(.unlink, nth: 1, .fail(errno: FaultyFileIO.EIO), pathContains: "container-000002")
        let e = Kit.logError { try log.removeContainer(2) }
        #expect(io.faultsFired == 1)
        #expect(e == nil, "removeContainer threw \(String(describing: e)) though the base file no longer names the container")
        #expect(!log.isFailed)
        #expect(log.info().containers.map(\.physicalID) == [0, 1])
        #expect(try log.strayFiles().map(\.name) == ["container-000002"])
        let lsn = try log.append(Kit.payload(1))
        try log.flush(upTo: lsn)
        try log.close()
        let again = try LogStore.open(at: dir)
        #expect(again.info().containers.map(\.physicalID) == [0, 1])
        #expect(try again.strayFiles().map(\.kind) == [.orphanContainer])
        try again.close()
    }

    @Test("removeContainer of a free container whose directory fsync fails: the log fails (sticky); a reopen has it removed")
    func removeFreeDirSyncFails() throws {
        let dir = Kit.temporaryPath("rmdirsync")
        defer { Kit.remove(dir) }
        let io = FaultyFileIO()
        let log = try LogStore.create(at: dir, options: Kit.tinyOptions(containers: 3), io: io)
        let first = try log.append(Kit.payload(0))
        try log.flush(upTo: first)
        io.inject(.fsyncDirectory, nth: 1, .fail(errno: FaultyFileIO.EIO))
        let e = Kit.logError { try log.removeContainer(2) }
        #expect(e?.code == .failed)
        #expect(e?.errno == FaultyFileIO.EIO)
        #expect(log.isFailed)
        #expect(Kit.logError { _ = try log.append(Kit.payload(1)) }?.code == .failed)
        _ = Kit.logError { try log.close() }
        #expect(io.openFiles.isEmpty)
        let again = try LogStore.open(at: dir)
        #expect(again.info().containers.map(\.physicalID) == [0, 1])
        #expect(try again.read(first).data == Kit.payload(0))
        try again.close()
    }

    /// Recycling deleted a container pending delete on its deletion queue and ignored the directory
    /// fsync after the unlink failing: the log went on acknowledging flushes after a sync error, where a
    /// free container's removal (`removeFreeDirSyncFails`) fails the log.
    @Test("recycling deletes a container pending delete and the directory fsync fails: the log fails (sticky), as a free container's removal does")
    func recycledDeletionDirSyncFails() async throws {
        let dir = Kit.temporaryPath("recycledirsync")
        defer { Kit.remove(dir) }
        let io = FaultyFileIO()
        let log = try LogStore.create(at: dir, options: Kit.tinyOptions(containers: 4), io: io)
        // Logical container 1 holds records: removing it marks it pending delete; recycling deletes it
        // (on the deletion queue) once the base passes it.
        let (last, data, removed, pendingDelete) = try await onOwnThread { () throws -> (LSN, [UInt8], UInt32, Bool) in
            var last = LSN.null
            var data: [UInt8] = []
            var i = 0
            while last.container < 3 {
                data = Kit.payload(i % 4096)
                last = try log.append(data)
                i += 1
            }
            try log.flush(upTo: last)
            guard let first = log.info().containers.first(where: { $0.logicalID == 1 }) else { throw LogError(.notFound, "no container 1") }
            try log.removeContainer(first.physicalID)
            let pendingDelete = log.info().containers.first { $0.physicalID == first.physicalID }?.state == .pendingDelete
            io.inject(.fsyncDirectory, nth: 1, .fail(errno: FaultyFileIO.EIO))
            try log.advanceBase(to: last)
            return (last, data, first.physicalID, pendingDelete)
        }
        #expect(pendingDelete)
        #expect(!log.info().containers.contains { $0.physicalID == removed })
        let failed = await eventually { io.faultsFired == 1 && log.isFailed }
        #expect(io.faultsFired == 1)
        #expect(failed, "the log went on after its directory fsync failed")
        #expect(log.failure?.errno == FaultyFileIO.EIO)
        let next = await onOwnThread {
            Kit.logError {
                let lsn = try log.append(Kit.payload(1))
                try log.flush(upTo: lsn)
            }
        }
        #expect(next?.code == .failed, "\(String(describing: next))")
        _ = Kit.logError { try log.close() }
        #expect(io.openFiles.isEmpty)
        let again = try LogStore.open(at: dir)
        #expect(!again.info().containers.contains { $0.physicalID == removed })
        #expect(try again.read(last).data == data)
        try again.close()
    }
}
