// close() against calls already running (a base-file update, a block scan, a second close), and the
// directory syncs that make a log's names durable when create fails part-way. Each test failed before
// its fix: a base record written through a descriptor close() had released (into whatever file got the
// number next), reads through released descriptors, a second close() reporting success for a close that
// then failed, and logs whose directory entries no sync ever covered.
import Foundation
import Testing
import Dispatch
@testable import LogStore
#if canImport(Glibc)
import Glibc
#endif

@Suite struct CloseRaceTests {
    /// addContainer that passed its usability check before close() writes the base file after close()
    /// has released (closed) the base file's descriptor: into whatever file now has that number. Now
    /// close() waits for the add, which completes; nothing is released under it.
    @Test func addContainerRacingCloseWritesThroughAReleasedDescriptor() throws {
        let dir = FaultTestKit.temporaryPath("close-race-add-close")
        defer { FaultTestKit.remove(dir); FaultTestKit.remove(dir + "-victims") }
        let io = ParkingIO(parkAt: .directorySync)
        let log = try LogStore.create(at: dir, options: FaultTestKit.tinyOptions(), io: io)
        try log.flush(upTo: try log.append([1, 2, 3]))
        io.arm()
        let result = LockedBox<String>("running")
        let adder = Thread {
            do { let p = try log.addContainer(); result.withLock { $0 = "added \(p)" } } catch { result.withLock { $0 = "threw \(error)" } }
        }
        adder.start()
        io.entered.wait()  // addContainer has created its file and is syncing the directory
        let closer = Thread { try? log.close() }
        closer.start()
        usleep(200_000)  // a close() that does not wait for the add has released the files by now
        // Another component of the process opens files and gets any freed descriptor numbers.
        try FileManager.default.createDirectory(atPath: dir + "-victims", withIntermediateDirectories: true)
        var victims: [(Int32, String)] = []
        for i in 0..<8 {
            let p = dir + "-victims/v\(i)"
            let fd = Glibc.open(p, O_CREAT | O_RDWR, 0o644)
            victims.append((fd, p))
        }
        io.release.signal()
        while !adder.isFinished || !closer.isFinished { usleep(1000) }
        var damaged: [String] = []
        for (fd, p) in victims {
            var st = stat()
            fstat(fd, &st)
            if st.st_size > 0 { damaged.append("\(p) (fd \(fd)) now \(st.st_size) bytes") }
            Glibc.close(fd)
        }
        #expect(io.stale.isEmpty, "I/O on descriptors close() released: \(io.stale)")
        #expect(damaged.isEmpty, "unrelated files written: \(damaged)")
        #expect(io.open.isEmpty, "descriptors leaked: \(io.open)")
        // close() waited for the add: it completed, and the log names its container.
        let added = result.snapshot
        #expect(added.hasPrefix("added"), "\(added)")
        let again = try LogStore.open(at: dir)
        if let p = UInt32(added.dropFirst("added ".count)) {
            #expect(again.info().containers.contains { $0.physicalID == p })
        }
        try again.close()
    }

    /// create() fails because fsyncing the parent after making the log's directory hit EIO; the caller
    /// retries, and the retry succeeds without ever syncing the parent: the whole log directory
    /// (and every record later acknowledged in it) can vanish at a power loss.
    @Test func createRetryAfterParentSyncEIOSkipsTheParentSync() throws {
        let parent = FaultTestKit.temporaryPath("close-race-create-parent")
        try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true)
        defer { FaultTestKit.remove(parent) }
        let dir = parent + "/log"
        let io = FaultyFileIO()
        io.inject(.fsyncDirectory, nth: 1, .fail(errno: FaultyFileIO.EIO))
        #expect(throws: LogError.self) { _ = try LogStore.create(at: dir, options: FaultTestKit.tinyOptions(), io: io) }
        io.clearFaults()
        io.clearLog()
        let log = try LogStore.create(at: dir, options: FaultTestKit.tinyOptions(), io: io)
        try log.flush(upTo: try log.append([7]))   // acknowledged
        try log.close()
        let dirSyncs = io.calls.filter { $0.op == .fsyncDirectory }.map(\.path)
        #expect(dirSyncs.contains { $0 == parent || $0 == parent + "/" }, "the parent of the new log directory was never synced: \(dirSyncs)")
    }

    /// scanBlocks reads container descriptors without registering as an active read: close() releases
    /// them under it.
    @Test func scanBlocksRacingCloseReadsReleasedDescriptors() throws {
        let dir = FaultTestKit.temporaryPath("close-race-scan-close")
        defer { FaultTestKit.remove(dir) }
        let io = ParkingIO(parkAt: .containerRead)
        let log = try LogStore.create(at: dir, options: FaultTestKit.tinyOptions(), io: io)
        for i in 0..<50 { _ = try log.append(FaultTestKit.payload(i)) }
        try log.flush()
        io.arm()
        let result = LockedBox<String>("running")
        let scanner = Thread {
            do { let r = try log.scanBlocks(); result.withLock { $0 = "ok problems=\(r.problems)" } } catch { result.withLock { $0 = "threw \(error)" } }
        }
        scanner.start()
        io.entered.wait()
        let closer = Thread { try? log.close() }
        closer.start()
        usleep(300_000)
        let closedWhileScanning = closer.isFinished
        io.release.signal()
        while !scanner.isFinished || !closer.isFinished { usleep(1000) }
        #expect(io.stale.isEmpty, "reads through descriptors close() released: \(io.stale)")
        #expect(!closedWhileScanning, "close() returned while the scan was still reading")
        #expect(result.snapshot == "ok problems=[]", "\(result.snapshot)")
    }
}

@Suite struct CreateDirectorySyncTests {
    /// The directory fsync after the base file's rename fails: create throws, but the log exists; a
    /// retried create refuses ("a log already exists"), open succeeds and acknowledges flushes, and no
    /// one ever syncs the directory: the base file's name (the whole log) can vanish at a power loss.
    @Test func baseRenameDirSyncEIOLeavesALogWhoseNameIsNeverSynced() throws {
        let dir = FaultTestKit.temporaryPath("close-race-create-rename")
        defer { FaultTestKit.remove(dir) }
        let io = FaultyFileIO()
        io.inject(.fsyncDirectory, nth: 3, .fail(errno: FaultyFileIO.EIO))   // parent, containers, base rename
        var first = "ok"
        do { _ = try LogStore.create(at: dir, options: FaultTestKit.tinyOptions(), io: io) } catch { first = "\(error)" }
        let faulted = io.faultedCalls.map(\.description)
        io.clearFaults()
        io.clearLog()
        var retry = "ok"
        do { let l = try LogStore.create(at: dir, options: FaultTestKit.tinyOptions(), io: io); try l.close() } catch { retry = "\(error)" }
        let log = try LogStore.open(at: dir, io: io)
        try log.flush(upTo: try log.append([42]))   // acknowledged
        try log.close()
        let dirSyncs = io.calls.filter { $0.op == .fsyncDirectory }.map(\.path)
        #expect(first != "ok" && retry != "ok", "the create failed at its third directory sync (\(faulted)); the retry finds a log: \(first) / \(retry)")
        #expect(!dirSyncs.isEmpty, "a record was acknowledged in a log whose base file's directory entry was never synced")
    }
}

@Suite struct ConcurrentCloseTests {
    /// Two threads close the log; the final flush of the first close fails. The second close returns
    /// success at once, before anything is durable, and even though close ends with `failed`.
    @Test func secondConcurrentCloseReportsSuccessForAFailedClose() throws {
        let dir = FaultTestKit.temporaryPath("close-race-close-close")
        defer { FaultTestKit.remove(dir) }
        let io = ParkingIO(parkAt: .containerSync, failAfterRelease: true)
        let log = try LogStore.create(at: dir, options: FaultTestKit.tinyOptions(), io: io)
        let lsn = try log.append([1, 2, 3])   // not flushed: close must make it durable
        io.arm()
        let first = LockedBox<String>("running")
        let a = Thread { do { try log.close(); first.withLock { $0 = "ok" } } catch { first.withLock { $0 = "threw \(error)" } } }
        a.start()
        io.entered.wait()   // close's final batch is in fdatasync
        let releaser = Thread { usleep(200_000); io.release.signal() }   // the sync fails 200 ms later
        releaser.start()
        var second = "ok"
        do { try log.close() } catch { second = "threw \(error)" }
        let durableWhenSecondReturned = log.durableLSN >= lsn
        while !a.isFinished { usleep(1000) }
        #expect(second != "ok" || durableWhenSecondReturned, "close() returned success while the final flush was still running and then failed")
    }
}

