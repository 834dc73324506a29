import Foundation
import Testing
@testable import LogStore

/// A temporary directory removed when the value goes away.
final class StreamTestDirectory {
    let path = NSTemporaryDirectory() + "txlog-streams-\(UUID().uuidString)"
    deinit { try? FileManager.default.removeItem(atPath: path) }
}

func streamTestOptions(containers: Int = 4, container: UInt64 = 512 * 1024, block: Int = 4096, codec: Codec = .lz4) -> LogCreateOptions {
    var o = LogCreateOptions()
    o.containerSize = container
    o.containerCount = containers
    o.blockSize = block
    o.codec = codec
    return o
}

func streamPayload(_ stream: String, _ i: Int, size: Int = 40) -> [UInt8] {
    var p = Array("\(stream)#\(i)#".utf8)
    while p.count < size { p.append(UInt8(truncatingIfNeeded: p.count &* 31 &+ i)) }
    return p
}

@Suite("Streams") struct StreamTests {
    @Test("create, open, list and delete more than 100 streams")
    func manyStreams() throws {
        let dir = StreamTestDirectory()
        let log = try LogStore.create(at: dir.path, options: streamTestOptions())
        for i in 0..<120 { _ = try log.createStream("s\(i)") }
        #expect(log.streams().count == 121)
        #expect(throws: LogError.self) { try log.createStream("s7") }
        #expect(throws: LogError.self) { try log.openStream("missing") }
        try log.deleteStream("s5")
        #expect(log.streams().count == 120)
        #expect((try? log.openStream("s5")) == nil)
        try log.close()
        let again = try LogStore.open(at: dir.path)
        #expect(again.streams().count == 120)
        #expect(try again.openStream("s119").name == "s119")
        #expect((try? again.openStream("s5")) == nil)
        try again.close()
    }

    @Test("a stream table too big for a base-file slot: createStream is invalidArgument, the stream is not created, its id is not used up, the log goes on and reopens")
    func streamTableOverflowingTheBaseSlotIsRefused() throws {
        // On the in-memory disk: each of the ~880 creates writes and syncs the base file.
        let disk = SimulatedDisk()
        try disk.makeDirectory("/s")
        let path = "/s/log"
        let log = try LogStore.create(at: path, options: streamTestOptions(), io: disk)
        // 250 + 5 bytes: 296 bytes per entry, so about 880 fill the 256 KiB slot.
        let long = String(repeating: "n", count: 250)
        var created: [String] = []
        var refused: (name: String, error: LogError)?
        for i in 0..<1000 {
            let name = long + String(10_000 + i)
            do {
                _ = try log.createStream(name)
                created.append(name)
            } catch let e as LogError {
                refused = (name, e)
                break
            }
        }
        let r = try #require(refused)
        #expect(r.error.code == .invalidArgument)
        #expect(r.error.message.contains("base-file slot"), "\(r.error.message)")
        #expect(created.count > 800)
        // Not half-created: not listed, not openable, and its name is free again (still too big).
        #expect((try? log.openStream(r.name)) == nil)
        #expect(log.streams().count == created.count + 1)
        #expect(LogTestKit.errorCode { _ = try log.createStream(r.name) } == .invalidArgument)
        // The log goes on: appends, a base-file update, a stream deletion that makes room.
        let last = try log.openStream(created[created.count - 1])
        let lsn = try last.append(Array("after the refusal".utf8))
        try log.flush(upTo: lsn)
        try log.deleteStream(created[0])
        let fits = try log.createStream(r.name)
        #expect(fits.name == r.name)
        // The two refused creates did not use up stream ids (a log has 4095 over its lifetime).
        #expect(fits.id == UInt16(created.count + 1))
        try log.close()
        let again = try LogStore.open(at: path, io: disk)
        #expect(again.streams().count == created.count + 1)
        #expect((try? again.openStream(created[0])) == nil)
        #expect(try String(decoding: again.openStream(created[created.count - 1]).read(lsn).data, as: UTF8.self) == "after the refusal")
        #expect(try again.openStream(r.name).name == r.name)
        try again.close()
    }

    @Test("records of many streams share blocks; each reader sees only its own, in order")
    func interleavedReaders() throws {
        let dir = StreamTestDirectory()
        let log = try LogStore.create(at: dir.path, options: streamTestOptions(containers: 6))
        let names = (0..<5).map { "stream-\($0)" }
        let streams = try names.map { try log.createStream($0) }
        var expected: [String: [(LSN, [UInt8])]] = [:]
        for i in 0..<600 {
            let k = i % 5 == 0 ? 0 : 1 + i % 4
            let p = streamPayload(names[k], i)
            let lsn = try streams[k].append(p)
            expected[names[k], default: []].append((lsn, p))
        }
        try log.flush()
        func check(_ log: LogStore) throws {
            for name in names {
                var cursor = try log.openStream(name).records()
                var got: [(LSN, [UInt8])] = []
                while let r = try cursor.next() {
                    #expect(r.stream == (try log.openStream(name)).id)
                    got.append((r.lsn, r.data))
                }
                let want = expected[name] ?? []
                #expect(got.count == want.count)
                #expect(zip(got, want).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 })
                #expect(zip(got, got.dropFirst()).allSatisfy { $0.0 < $1.0 })
            }
        }
        try check(log)
        try log.close()
        let again = try LogStore.open(at: dir.path)
        try check(again)
        // A record of another stream is not readable through this one.
        let first = try #require(expected["stream-1"]?.first?.0)
        #expect(throws: LogError.self) { try again.openStream("stream-2").read(first) }
        #expect(try again.openStream("stream-1").lastLSN == expected["stream-1"]!.last!.0)
        try again.close()
    }

    @Test("a stream cursor started at an LSN inside a block is notFound (as LogStore.records is), never corrupt on an undamaged log")
    func streamCursorFromAnLSNInsideABlock() throws {
        let dir = LogTestKit.temporaryPath("cursorinside")
        defer { LogTestKit.remove(dir) }
        let log = try LogStore.create(at: dir, options: LogTestKit.options(containerSize: 512 * 1024, containerCount: 4, blockSize: 4096, codec: .none))
        let s = try log.createStream("s")
        var lsns: [LSN] = []
        for i in 0..<200 { lsns.append(try s.append(Array(repeating: UInt8(i), count: 300))) }
        try log.flush()
        let inside = LSN(uncheckedContainer: 1, blockOffset: UInt64(Format.containerDataStart + 1024), slot: 0)
        #expect(!lsns.contains { $0.blockLSN == inside })
        // Refused when the cursor is made (LogStream.records checks an explicit start), or at its first read.
        let e = FaultTestKit.logError {
            var c = try s.records(from: inside)
            _ = try c.next()
        }
        #expect(e?.code == .notFound, "\(String(describing: e))")
        #expect(FaultTestKit.logError { _ = try log.records(from: inside) }?.code == .notFound)
        // From a record's LSN the cursor reads on as before.
        var from = try s.records(from: lsns[100])
        #expect(try from.next()?.lsn == lsns[100])
        try log.close()
    }

    @Test("restart areas: latest, chain, new base, survive reopen")
    func restartAreas() throws {
        let dir = StreamTestDirectory()
        let log = try LogStore.create(at: dir.path, options: streamTestOptions())
        let tm = try log.createStream("ktm")
        #expect(try tm.readRestartArea() == nil)
        var restarts: [LSN] = []
        var last = LSN.null
        for round in 0..<4 {
            for i in 0..<20 { last = try tm.append(streamPayload("ktm", round * 100 + i)) }
            restarts.append(try tm.writeRestartArea(Array("checkpoint \(round)".utf8), newBase: last))
        }
        #expect(try tm.readRestartArea()?.data == Array("checkpoint 3".utf8))
        #expect(try tm.info().baseLSN == last)
        try log.close()
        let again = try LogStore.open(at: dir.path)
        let s = try again.openStream("ktm")
        let latest = try #require(try s.readRestartArea())
        #expect(latest.lsn == restarts[3] && latest.type == .restart)
        var walked: [LSN] = [latest.lsn]
        var cursor = latest.lsn
        while let prev = try s.previousRestartArea(before: cursor) {
            walked.append(prev.lsn)
            cursor = prev.lsn
        }
        // Older restart areas below the base may be recycled; those still present chain in order.
        #expect(walked == Array(restarts.reversed().prefix(walked.count)))
        #expect(walked.count >= 1)
        #expect(try s.info().baseLSN == last)
        try again.close()
    }

    @Test("containers recycle hundreds of times with streams moving at different speeds")
    func recyclingManyTimes() throws {
        let dir = StreamTestDirectory()
        let log = try LogStore.create(at: dir.path, options: streamTestOptions(containers: 4, codec: .none))
        let fast = try log.createStream("fast")
        let slow = try log.createStream("slow")
        let idle = try log.createStream("idle")  // never appends: pins nothing
        var slowLast = LSN.null
        let record = [UInt8](repeating: 7, count: 3000)
        var i = 0
        while log.info().containers.map(\.logicalID).max() ?? 0 < 200 {
            let f = try fast.append(record)
            if i % 10 == 0 { slowLast = try slow.append(record) }
            if i % 50 == 0 {
                try fast.flush(upTo: f)
                try fast.advanceBase(to: f)
                if slowLast != .null { try slow.advanceBase(to: slowLast) }
            }
            i += 1
        }
        let info = log.info()
        #expect(info.containers.count == 4)
        #expect(try idle.info().baseLSN == .null)
        #expect(info.containers.map(\.logicalID).max() ?? 0 >= 200)
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasPrefix("container-") }
        #expect(files.count == 4)
        // Everything from the slow stream's base on is readable.
        var c = try slow.records()
        var n = 0
        while let r = try c.next() {
            #expect(r.data == record)
            n += 1
        }
        #expect(n >= 1)
        try log.close()
    }

    @Test("log full: the tail-pinned handler advances the base and the append then succeeds")
    func tailPinnedHandler() throws {
        let dir = StreamTestDirectory()
        let log = try LogStore.create(at: dir.path, options: streamTestOptions(containers: 2, codec: .none))
        log.core.pinnersAheadDisabledForTesting = true  // the handler from the full log's append
        let lazy = try log.createStream("lazy")
        let calls = StreamTestBox<[LSN]>([])
        lazy.onTailPinned { target in
            calls.withLock { $0.append(target) }
            try? lazy.advanceBase(to: lazy.lastLSN)
        }
        let record = [UInt8](repeating: 1, count: 2000)
        for _ in 0..<2000 { _ = try lazy.append(record) }
        #expect(!calls.snapshot.isEmpty)
        try log.close()
    }

    @Test("log full: a handler whose own restart area does not fit gets logFull, and is not called again from inside itself")
    func tailPinnedHandlerThatCannotWrite() throws {
        let dir = StreamTestDirectory()
        let log = try LogStore.create(at: dir.path, options: streamTestOptions(containers: 2, codec: .none))
        log.core.pinnersAheadDisabledForTesting = true  // the handler from the full log's append
        let stuck = try log.createStream("stuck")
        let checkpointer = try log.createStream("checkpointer")
        let depth = StreamTestBox(0)
        let deepest = StreamTestBox(0)
        let nested = StreamTestBox<[LogError]>([])
        checkpointer.onTailPinned { _ in
            let d = depth.withLock { $0 += 1; return $0 }
            deepest.withLock { $0 = max($0, d) }
            defer { depth.withLock { $0 -= 1 } }
            // Like a TM checkpoint: a restart area that would move this stream's base, if it fitted.
            do { _ = try checkpointer.writeRestartArea([UInt8](repeating: 2, count: 1500), newBase: checkpointer.lastLSN) } catch let e as LogError {
                nested.withLock { $0.append(e) }
            } catch {}
        }
        _ = try checkpointer.append([9])
        let record = [UInt8](repeating: 1, count: 2000)
        let error = appendUntilLogFull(limit: 2000) { try stuck.append(record) }
        #expect(error?.code == .logFull)
        #expect(deepest.snapshot == 1, "the handler ran, and never inside itself")
        #expect(!nested.snapshot.isEmpty && nested.snapshot.allSatisfy { $0.code == .logFull })
        // The log is intact and still takes appends once there is room.
        _ = try log.addContainer()
        _ = try stuck.append(record)
        try log.close()
    }

    @Test("log full without a handler names the pinning stream")
    func logFullNamesPinner() throws {
        let dir = StreamTestDirectory()
        let log = try LogStore.create(at: dir.path, options: streamTestOptions(containers: 2, codec: .none))
        let stuck = try log.createStream("stuck")
        let record = [UInt8](repeating: 1, count: 2000)
        let error = appendUntilLogFull(limit: 2000) { try stuck.append(record) }
        let e = try #require(error)
        #expect(e.code == .logFull)
        #expect(e.message.contains("stuck"))
        // A full log is still intact: everything appended reads back.
        var c = try stuck.records()
        var n = 0
        while let r = try c.next() {
            #expect(r.data == record)
            n += 1
        }
        #expect(n > 100)
        try log.close()
    }

    @Test("auto-grow within policy, persisted across reopen")
    func policyGrowth() throws {
        let dir = StreamTestDirectory()
        let log = try LogStore.create(at: dir.path, options: streamTestOptions(containers: 2, codec: .none))
        var p = LogPolicy()
        p.autoGrow = true
        p.growthIncrement = 2
        p.maxContainers = 6
        p.containerPrefix = "grown-"
        try log.setPolicy(p)
        let record = [UInt8](repeating: 3, count: 2000)
        let full = appendUntilLogFull(limit: 5000) { try log.append(record) }
        #expect(full?.code == .logFull)
        #expect(log.info().containers.count == 6)
        try log.close()
        let names = try FileManager.default.contentsOfDirectory(atPath: dir.path)
        #expect(names.filter { $0.hasPrefix("grown-") }.count == 4)
        let again = try LogStore.open(at: dir.path)
        #expect(again.policy == p)
        #expect(again.info().containers.count == 6)
        try again.close()
    }

    @Test("auto-grow stays within maxContainers or maxSizeBytes when eight appenders find the log full at once; an explicit addContainer is not bound by the policy",
          arguments: [false, true])
    func concurrentPolicyGrowth(limitBySize: Bool) async throws {
        let dir = StreamTestDirectory()
        let containerSize: UInt64 = 512 * 1024
        // Uncompressed: 2000 records of 6000 bytes are more than the log can ever hold, so every thread
        // meets the full log (with lz4 this pattern compressed so well that a thread could finish first).
        let log = try LogStore.create(at: dir.path, options: streamTestOptions(containers: 2, container: containerSize, codec: .none))
        var p = LogPolicy()
        p.autoGrow = true
        p.growthIncrement = 2
        if limitBySize { p.maxSizeBytes = 5 * containerSize + 1000 } else { p.maxContainers = 4 }
        try log.setPolicy(p)
        let limit = limitBySize ? 5 : 4
        let record = (0..<6000).map { UInt8(truncatingIfNeeded: $0 &* 7919 >> 3) }
        let errors = LockedBox([String]())
        await LogTestKit.onThreads(8) { _ in
            for _ in 0..<2000 {
                do { _ = try log.append(record) } catch {
                    if (error as? LogError)?.code != .logFull { errors.withLock { $0.append("\(error)") } }
                    return
                }
            }
            errors.withLock { $0.append("never full") }
        }
        #expect(errors.snapshot.isEmpty)
        #expect(log.info().containers.count == limit)
        _ = try log.addContainer()
        #expect(log.info().containers.count == limit + 1)
        try log.close()
        let again = try LogStore.open(at: dir.path)
        #expect(again.info().containers.count == limit + 1)
        try again.close()
    }

    @Test("reservations: reserved appends succeed when plain ones are refused; exhausted and pinning reservations fail")
    func reservations() throws {
        let dir = StreamTestDirectory()
        let log = try LogStore.create(at: dir.path, options: streamTestOptions(containers: 2, codec: .none))
        let s = try log.createStream("undo")
        #expect(throws: LogError.self) { try s.reserve(recordSizes: [Int](repeating: 100_000, count: 20)) }
        try s.reserve(recordSizes: [Int](repeating: 1000, count: 50))
        #expect(log.info().reservedBytes > 50_000)
        let record = [UInt8](repeating: 9, count: 1000)
        var refused = false
        for _ in 0..<2000 {
            do { _ = try s.append(record) } catch let e as LogError where e.code == .logFull {
                refused = true
                break
            }
        }
        #expect(refused)
        for _ in 0..<50 { _ = try s.append(record, usingReservation: true) }
        #expect(throws: LogError.self) { try s.append(record, usingReservation: true) }
        #expect(log.info().reservedBytes == 0)
        try log.flush()
        try log.close()
    }

    /// A plain append that did not fit the rest of the current container moved to the next one, wasting
    /// that rest, while the check against the reserved space counted it as free: the log accepted these
    /// plain records and then refused the sixth reserved one with logFull.
    @Test("reservations: plain appends that waste the rest of a container cannot eat into reserved space")
    func reservationsSurviveContainerTails() throws {
        let dir = StreamTestDirectory()
        let log = try LogStore.create(at: dir.path, options: streamTestOptions(containers: 4, codec: .none))
        let s = try log.createStream("undo")
        try s.reserve(recordSizes: [Int](repeating: 53_443, count: 6))
        let plain = [73938, 32687, 98465, 12591, 45559, 20490, 39538, 6962, 11307, 20174, 107331, 164897, 52520, 74657,
                     67692, 21730, 14456, 7046, 122915, 7369, 101668, 1492, 9387, 13694, 46130, 57648, 198465]
        var refused = 0
        for size in plain {
            do { try log.append([UInt8](repeating: 3, count: size)) } catch let e as LogError where e.code == .logFull { refused += 1 }
        }
        #expect(refused > 0, "the plain records should not all fit beside the reservations")
        for k in 0..<6 {
            #expect(throws: Never.self, "reserved append #\(k)") { try s.append([UInt8](repeating: 1, count: 53_443), usingReservation: true) }
        }
        #expect(log.info().reservedBytes == 0)
        try log.flush()
        try log.close()
    }

    /// release(recordSizes:) used to compute the cost of Int.max and trap on the overflow.
    @Test("reservations: release of a size outside 0...maxRecordSize is invalidArgument and changes nothing",
          arguments: [Int.max, Int.min, -1, 524_288])
    func releaseSizeOutOfRange(size: Int) throws {
        let dir = StreamTestDirectory()
        let log = try LogStore.create(at: dir.path, options: streamTestOptions(containers: 2))
        let s = try log.createStream("undo")
        try s.reserve(recordSizes: [100])
        let before = try s.info()
        #expect(size < 0 || size > log.maxRecordSize)
        do {
            try s.release(recordSizes: [size])
            Issue.record("release(recordSizes: [\(size)]) was accepted")
        } catch let e as LogError {
            #expect(e.code == .invalidArgument)
            #expect(e.message.contains("0...\(log.maxRecordSize)"), "\(e)")
        }
        #expect(try s.info() == before)
        try s.release(recordSizes: [100])
        #expect(log.info().reservedBytes == 0)
        try log.close()
    }

    @Test("archive tail keeps containers pending archive and lists their extents")
    func archive() throws {
        let dir = StreamTestDirectory()
        let log = try LogStore.create(at: dir.path, options: streamTestOptions(containers: 4, codec: .none))
        let first = try log.append([UInt8](repeating: 0, count: 100))
        try log.flush()  // only durable records can be archived
        try log.setArchiveTail(first)
        var last = first
        for _ in 0..<400 { last = try log.append([UInt8](repeating: 5, count: 2000)) }
        try log.flush()
        try log.advanceBase(to: last)
        let pending = log.info().containers.filter { $0.state == .pendingArchive }
        #expect(!pending.isEmpty)
        let extents = log.archiveExtents()
        #expect(extents.first?.startOffset == first.blockOffset)
        #expect(extents.allSatisfy { $0.endOffset > $0.startOffset })
        try log.setArchiveTail(last)
        #expect(log.info().containers.filter { $0.state == .pendingArchive }.isEmpty)
        try log.close()
    }

    @Test("deleting a stream stops it pinning the log")
    func deletionUnpins() throws {
        let dir = StreamTestDirectory()
        let log = try LogStore.create(at: dir.path, options: streamTestOptions(containers: 3, codec: .none))
        let keeper = try log.createStream("keeper")
        _ = try keeper.append([1, 2, 3])
        let record = [UInt8](repeating: 4, count: 2000)
        var last = LSN.null
        for _ in 0..<300 { last = try log.append(record) }
        try log.flush()
        try log.advanceBase(to: last)
        #expect(log.info().freeContainers == 0 || log.info().containers.contains { $0.logicalID == 1 })
        try log.deleteStream("keeper")
        try log.advanceBase(to: last)
        #expect(!log.info().containers.contains { $0.logicalID == 1 })
        try log.close()
    }

    @Test("a stream reader runs while other streams write")
    func readerWhileOthersWrite() async throws {
        let dir = StreamTestDirectory()
        let log = try LogStore.create(at: dir.path, options: streamTestOptions(containers: 8))
        let mine = try log.createStream("mine")
        var mineLSNs: [LSN] = []
        for i in 0..<200 { mineLSNs.append(try mine.append(streamPayload("mine", i))) }
        try await log.flush(upTo: mineLSNs.last!)
        let expected = mineLSNs
        try await withThrowingTaskGroup(of: Void.self) { group in
            for w in 0..<4 {
                group.addTask {
                    let s = try log.createStream("writer-\(w)")
                    for i in 0..<300 { _ = try s.append(streamPayload("w\(w)", i)) }
                }
            }
            group.addTask {
                for _ in 0..<5 {
                    var c = try mine.records()
                    var got: [LSN] = []
                    while let r = try c.next() { got.append(r.lsn) }
                    #expect(got == expected)
                }
            }
            try await group.waitForAll()
        }
        try log.close()
    }
}

/// A value shared with a handler that may run on another thread.
final class StreamTestBox<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value
    init(_ value: Value) { self.value = value }
    func withLock<T>(_ body: (inout Value) -> T) -> T { lock.withLock { body(&value) } }
    var snapshot: Value { lock.withLock { value } }
}

/// Appends with `append` until it throws a `LogError` (returned), or `limit` appends succeeded (nil).
private func appendUntilLogFull(limit: Int, _ append: () throws -> LSN) -> LogError? {
    for _ in 0..<limit {
        do { _ = try append() } catch let e as LogError { return e } catch { return LogError(.io, "unexpected \(error)") }
    }
    return nil
}
