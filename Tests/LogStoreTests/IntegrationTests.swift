// End-to-end tests of the public LogStore API on real files in temporary directories.

import Foundation
import Testing
@testable import LogStore

@Suite("Integration")
struct IntegrationTests {
    // MARK: Append, flush, read, reopen per codec

    @Test("append, flush, read, reopen", arguments: [Codec.none, .lz4, .zlib(level: 1), .zlib(level: 9)])
    func appendFlushReadReopen(codec: Codec) async throws {
        let dir = LogTestKit.temporaryPath("codec")
        defer { LogTestKit.remove(dir) }
        let log = try LogStore.create(at: dir, options: LogTestKit.options(containerSize: 1 << 20, blockSize: 8192, codec: codec))
        #expect(log.info().codec == codec)
        #expect(log.info().epoch == 1)

        var expected: [(LSN, [UInt8], LSN)] = []
        var rawBytes = 0
        var previous = LSN.invalid
        for i in 0..<2000 {
            let data = i % 3 == 0 ? LogTestKit.randomPayload(i, length: i % 257) : LogTestKit.textPayload(i, length: 20 + i % 300)
            let lsn = try log.append(data, previous: previous)
            expected.append((lsn, data, previous))
            rawBytes += RecordHeader.footprint(dataLength: data.count)
            previous = lsn
        }
        let last = try #require(expected.last?.0)
        #expect(log.lastLSN == last)
        try await log.flush(upTo: last)
        #expect(log.durableLSN >= last)
        for (lsn, data, prev) in expected {
            let r = try log.read(lsn)
            #expect(r.lsn == lsn)
            #expect(r.data == data)
            #expect(r.previous == prev)
            #expect(r.undoNext == .invalid)
            #expect(r.type == .data)
        }
        let stats = log.info().statistics
        if codec == .none {
            #expect(stats.bytesWritten >= UInt64(rawBytes), "uncompressed log wrote fewer bytes than its records hold")
        } else {
            #expect(stats.bytesWritten * 4 < UInt64(rawBytes) * 3, "\(codec) did not compress: \(stats.bytesWritten) of \(rawBytes)")
        }
        try log.close()

        // The first block on disk carries the codec id and level.
        let header = try firstBlockHeader(dir)
        #expect(header.codecID == codec.id)
        #expect(header.codecLevel == codec.level)
        #expect(header.logicalContainer == 1)
        #expect(header.epoch == 1)

        let again = try LogStore.open(at: dir)
        #expect(again.recoveryReport.cleanShutdown)
        #expect(again.recoveryReport.tornTail == nil)
        #expect(again.recoveryReport.lastLSN == last)
        #expect(again.lastLSN == last)
        #expect(again.info().epoch == 2)
        for (lsn, data, _) in expected { #expect(try again.read(lsn).data == data) }
        let all = try LogTestKit.allRecords(again)
        #expect(all.map(\.lsn) == expected.map(\.0))
        #expect(all.map(\.data) == expected.map(\.1))
        // The reopened log appends after what it recovered.
        let next = try again.append(Array("after reopen".utf8))
        #expect(next > last)
        try await again.flush(upTo: next)
        try again.close()

        let third = try LogStore.open(at: dir, options: LogOpenOptions(readOnly: true))
        #expect(try third.read(next).data == Array("after reopen".utf8))
        #expect(try LogTestKit.allRecords(third).count == expected.count + 1)
        try third.close()
    }

    // MARK: Cursors

    @Test("cursor from the start and from the middle, before and after flush and reopen")
    func cursors() async throws {
        let dir = LogTestKit.temporaryPath("cursor")
        defer { LogTestKit.remove(dir) }
        let log = try LogStore.create(at: dir, options: LogTestKit.options(containerSize: 1 << 20, blockSize: 4096, codec: .lz4))
        var lsns: [LSN] = []
        var payloads: [[UInt8]] = []
        for i in 0..<4000 {
            let data = LogTestKit.randomPayload(i, length: 100 + (i * 37) % 300)
            lsns.append(try log.append(data))
            payloads.append(data)
        }
        // The records cross into the second logical container.
        #expect(lsns.first?.container == 1)
        #expect(lsns.last?.container == 2)
        let crossing = try #require(lsns.firstIndex { $0.container == 2 })

        func check(_ log: LogStore, _ when: Comment) throws {
            let all = try LogTestKit.allRecords(log)
            #expect(all.map(\.lsn) == lsns, when)
            #expect(all.map(\.data) == payloads, when)
            for start in [0, 1234, crossing - 1, crossing, lsns.count - 1] {
                var cursor = try log.records(from: lsns[start])
                var got: [LSN] = []
                while let r = try cursor.next() {
                    #expect(r.data == payloads[start + got.count], when)
                    got.append(r.lsn)
                }
                #expect(got == Array(lsns[start...]), "cursor from index \(start): \(when)")
            }
            // A position that is not a record is refused.
            let bogus = LSN(uncheckedContainer: 1, blockOffset: lsns[0].blockOffset, slot: 511)
            #expect(throws: LogError.self) { _ = try log.records(from: bogus) }
        }

        try check(log, "in memory, before any flush")
        try await log.flush()
        try check(log, "after flush")
        try log.close()
        let again = try LogStore.open(at: dir)
        try check(again, "after reopen")
        try again.close()
    }

    // MARK: Chains

    @Test("previous and undo-next chains end at .invalid")
    func chains() async throws {
        let dir = LogTestKit.temporaryPath("chains")
        defer { LogTestKit.remove(dir) }
        let log = try LogStore.create(at: dir, options: LogTestKit.options(blockSize: 4096))
        // Five interleaved transactions of 40 records each. previous links each record to the previous one
        // of its transaction; undoNext skips one (as compensation records do).
        var perTxn: [[LSN]] = Array(repeating: [], count: 5)
        for step in 0..<40 {
            for t in 0..<5 {
                let mine = perTxn[t]
                let previous = mine.last ?? .invalid
                let undoNext = mine.count >= 2 ? mine[mine.count - 2] : .invalid
                let lsn = try log.append(Array("txn \(t) step \(step)".utf8), previous: previous, undoNext: undoNext)
                perTxn[t].append(lsn)
            }
        }

        func walk(_ log: LogStore, _ when: Comment) throws {
            for t in 0..<5 {
                let mine = perTxn[t]
                var chain = log.previousChain(from: mine.last!)
                var seen: [LSN] = []
                while let r = try chain.next() {
                    #expect(r.data == Array("txn \(t) step \(mine.count - 1 - seen.count)".utf8), when)
                    seen.append(r.lsn)
                }
                #expect(seen == mine.reversed(), when)
                #expect(try chain.next() == nil, "an ended chain stays ended")

                var undo = log.undoNextChain(from: mine.last!)
                var undone: [LSN] = []
                while let r = try undo.next() { undone.append(r.lsn) }
                let expectedUndo = stride(from: mine.count - 1, through: 0, by: -2).map { mine[$0] }
                #expect(undone == expectedUndo, when)
            }
            var empty = log.previousChain(from: .invalid)
            #expect(try empty.next() == nil)
        }

        try walk(log, "records in memory")
        try await log.flush()
        try walk(log, "after flush")

        // A link that points forward is refused when appended: a chain walk would find it `corrupt`.
        let ahead = LSN(uncheckedContainer: 1000, blockOffset: 4096, slot: 0)
        expectLogError(.invalidArgument) { _ = try log.append(Array("bad".utf8), previous: ahead) }
        expectLogError(.invalidArgument) { _ = try log.append(Array("bad".utf8), undoNext: ahead) }
        let s = try log.createStream("links")
        expectLogError(.invalidArgument) { _ = try s.append(Array("bad".utf8), previous: ahead) }
        let lastOne = try log.append(Array("good".utf8), previous: log.lastLSN, undoNext: .null)
        var good = log.previousChain(from: lastOne)
        #expect(try good.next()?.lsn == lastOne)
        try log.close()

        let again = try LogStore.open(at: dir)
        try walk(again, "after reopen")
        try again.close()
    }

    // MARK: Reads of unflushed and flushed records

    @Test("reads from the open block, sealed blocks in memory, and disk")
    func readsBeforeAndAfterFlush() async throws {
        let dir = LogTestKit.temporaryPath("reads")
        defer { LogTestKit.remove(dir) }
        let log = try LogStore.create(at: dir, options: LogTestKit.options(blockSize: 4096, codec: .zlib(level: 6)))
        var records: [(LSN, [UInt8])] = []
        // Enough for several blocks: all but the last are sealed in memory, the last is the open block.
        for i in 0..<60 {
            let data = LogTestKit.randomPayload(i, length: 300)
            records.append((try log.append(data), data))
        }
        #expect(Set(records.map { $0.0.blockLSN }).count > 3)
        let openBlock = records.last!.0.blockLSN
        #expect(records.filter { $0.0.blockLSN == openBlock }.count >= 1)
        for (lsn, data) in records { #expect(try log.read(lsn).data == data, "unflushed \(lsn)") }

        try await log.flush()
        #expect(log.durableLSN >= records.last!.0)
        for (lsn, data) in records { #expect(try log.read(lsn).data == data, "flushed \(lsn)") }

        // More records after the flush, in a new open block, mixed with flushed ones.
        for i in 60..<70 {
            let data = LogTestKit.textPayload(i, length: 50)
            records.append((try log.append(data), data))
        }
        #expect(records[60].0.blockLSN > openBlock)
        for (lsn, data) in records.reversed() { #expect(try log.read(lsn).data == data) }

        // Reads outside the log are refused with the right codes.
        let last = records.last!.0
        #expect(throws: LogError.self) { _ = try log.read(.null) }
        #expect(throws: LogError.self) { _ = try log.read(.invalid) }
        #expect(LogTestKit.errorCode { _ = try log.read(LSN(uncheckedContainer: 9, blockOffset: 4096, slot: 0)) } == .invalidArgument)
        #expect(LogTestKit.errorCode { _ = try log.read(LSN(uncheckedContainer: 1, blockOffset: records[0].0.blockOffset, slot: 500)) } == .notFound)
        try log.close()
        #expect(LogTestKit.errorCode { _ = try log.read(last) } == .closed)
        #expect(LogTestKit.errorCode { _ = try log.append([1, 2, 3]) } == .closed)

        // With no read cache, every read goes to the container.
        var options = LogOpenOptions()
        options.readCacheBytes = 0
        let again = try LogStore.open(at: dir, options: options)
        for (lsn, data) in records { #expect(try again.read(lsn).data == data) }
        #expect(again.info().readCacheBytes == 0)
        try again.close()
    }

    // MARK: info()

    @Test("info() describes the layout, LSNs and statistics")
    func info() async throws {
        let dir = LogTestKit.temporaryPath("info")
        defer { LogTestKit.remove(dir) }
        let size: UInt64 = 1 << 20
        let log = try LogStore.create(at: dir, options: LogTestKit.options(containerSize: size, containerCount: 3, blockSize: 8192, codec: .zlib(level: 3)))
        var info = log.info()
        #expect(info.directory == dir)
        #expect(info.containerSize == size)
        #expect(info.blockSize == 8192)
        #expect(info.codec == .zlib(level: 3))
        #expect(info.maxRecordSize == Int(LogLimits.largestRecord(containerSize: size)))
        #expect(info.maxRecordSize == log.maxRecordSize)
        #expect(info.epoch == 1)
        #expect(info.baseLSN == .null)
        #expect(info.lastLSN == .null)
        #expect(info.durableLSN == .null)
        #expect(info.capacityBytes == 3 * size)
        #expect(info.usedBytes + info.freeBytes == info.capacityBytes)
        let freeAtStart = info.freeBytes
        #expect(info.containers.map(\.physicalID) == [0, 1, 2])
        #expect(info.containers.map(\.logicalID) == [1, 0, 0])
        #expect(info.containers.map(\.state) == [.active, .inactive, .inactive])
        #expect(info.freeContainers == 2)
        for c in info.containers {
            #expect(FileManager.default.fileExists(atPath: c.path))
            #expect(c.path.hasPrefix(dir + "/"))
            let attributes = try FileManager.default.attributesOfItem(atPath: c.path)
            #expect((attributes[.size] as? NSNumber)?.uint64Value == size)
        }
        #expect(info.statistics.syncs == 0)
        #expect(info.statistics.blocksWritten == 0)

        var last = LSN.null
        for i in 0..<100 { last = try log.append(LogTestKit.textPayload(i, length: 200)) }
        info = log.info()
        #expect(info.lastLSN == last)
        try await log.flush()
        info = log.info()
        #expect(info.durableLSN == last)
        #expect(info.statistics.syncs >= 1)
        #expect(info.statistics.blocksWritten >= 1)
        #expect(info.statistics.batches >= 1)
        #expect(info.statistics.bytesWritten > 0)
        #expect(info.statistics.bytesWritten % 512 == 0, "blocks are whole sectors")
        #expect(info.statistics.batchBlocksHistogram.reduce(0, +) == info.statistics.batches)
        #expect(info.freeBytes < freeAtStart, "writing used space")
        #expect(info.usedBytes + info.freeBytes == info.capacityBytes)
        let logID = info.logID
        try log.close()

        let again = try LogStore.open(at: dir)
        info = again.info()
        #expect(info.logID == logID)
        #expect(info.epoch == 2)
        #expect(info.lastLSN == last)
        #expect(info.durableLSN == last)
        try again.close()
    }

    // MARK: Containers

    @Test("addContainer lets the log grow past its original capacity")
    func addContainerThenFill() async throws {
        let dir = LogTestKit.temporaryPath("add")
        defer { LogTestKit.remove(dir) }
        let log = try LogStore.create(at: dir, options: LogTestKit.options(containerSize: 512 * 1024, containerCount: 2, blockSize: 4096, codec: .none))
        var records: [(LSN, Int)] = []
        func fillUntilFull() throws {
            while true {
                let i = records.count
                do {
                    records.append((try log.append(LogTestKit.randomPayload(i, length: 1900)), i))
                } catch let e as LogError where e.code == .logFull {
                    return
                }
                if records.count > 10_000 { Issue.record("the log never became full"); return }
            }
        }
        try fillUntilFull()
        let firstCapacity = records.count
        #expect(Set(records.map { $0.0.container }) == [1, 2])
        // Two 512 KiB containers hold 2 × 127 blocks of two 1900-byte records each.
        #expect(firstCapacity == 2 * 127 * 2)

        let physical = try log.addContainer()
        #expect(physical == 2)
        #expect(LogTestKit.containerFiles(in: dir).count == 3)
        #expect(log.info().containers.count == 3)
        #expect(log.info().freeContainers == 1)
        try fillUntilFull()
        #expect(records.count == firstCapacity * 3 / 2, "the added container holds as much as each original one")
        #expect(Set(records.map { $0.0.container }) == [1, 2, 3])
        try await log.flush()
        for (lsn, i) in records { #expect(try log.read(lsn).data == LogTestKit.randomPayload(i, length: 1900)) }
        try log.close()

        let again = try LogStore.open(at: dir)
        #expect(again.info().containers.count == 3)
        #expect(again.info().freeContainers == 0)
        let all = try LogTestKit.allRecords(again)
        #expect(all.map(\.lsn) == records.map(\.0))
        #expect(all.map(\.data) == records.map { LogTestKit.randomPayload($0.1, length: 1900) })
        try again.close()
    }

    @Test("removeContainer removes only free containers")
    func removeContainer() throws {
        let dir = LogTestKit.temporaryPath("remove")
        defer { LogTestKit.remove(dir) }
        let log = try LogStore.create(at: dir, options: LogTestKit.options(containerSize: 512 * 1024, containerCount: 2, blockSize: 4096))
        let lsn = try log.append(Array("keep me".utf8))
        let added = try log.addContainer()
        #expect(LogTestKit.containerFiles(in: dir).count == 3)
        #expect(LogTestKit.errorCode { try log.removeContainer(0) } == .invalidArgument, "container 0 holds data")
        #expect(LogTestKit.errorCode { try log.removeContainer(77) } == .notFound)
        try log.removeContainer(added)
        #expect(LogTestKit.containerFiles(in: dir).count == 2)
        #expect(log.info().containers.map(\.physicalID) == [0, 1])
        #expect(LogTestKit.errorCode { try log.removeContainer(1) } == .invalidArgument, "a log keeps at least two containers")
        try log.flush(upTo: lsn)
        try log.close()
        let again = try LogStore.open(at: dir)
        #expect(again.info().containers.count == 2)
        #expect(try again.read(lsn).data == Array("keep me".utf8))
        // The next container gets a new physical id, never a reused one.
        #expect(try again.addContainer() == added + 1)
        try again.close()
    }

    @Test("advanceBase recycles containers while the log runs many times its capacity")
    func advanceBaseRecycles() throws {
        let dir = LogTestKit.temporaryPath("recycle")
        defer { LogTestKit.remove(dir) }
        let containerSize: UInt64 = 512 * 1024
        let log = try LogStore.create(at: dir, options: LogTestKit.options(containerSize: containerSize, containerCount: 3, blockSize: 4096, codec: .lz4))
        let initialFiles = LogTestKit.containerFiles(in: dir)
        #expect(initialFiles.count == 3)

        func length(_ i: Int) -> Int { 500 + (i * 7919) % 2500 }
        var records: [LSN] = []
        var written = 0
        var maxLogical: UInt32 = 1
        var advances = 0
        let target = 10 * 3 * Int(containerSize)
        while written < target {
            let i = records.count
            let data = LogTestKit.randomPayload(i, length: length(i))
            let lsn: LSN
            do {
                lsn = try log.append(data)
            } catch let e as LogError where e.code == .logFull {
                try log.flush()
                let before = log.baseLSN
                try log.advanceBase(to: log.durableLSN)
                advances += 1
                #expect(log.baseLSN > before)
                #expect(log.baseLSN == log.durableLSN)
                // Logical ids only go up; the same three files are reused.
                let info = log.info()
                let active = info.containers.filter { $0.state == .active }.map(\.logicalID).sorted()
                #expect(!active.isEmpty)
                if let lo = active.first, let hi = active.last {
                    #expect(active == Array(lo...hi), "active logical containers are contiguous")
                    #expect(hi >= maxLogical)
                    maxLogical = hi
                }
                #expect(info.containers.map(\.physicalID) == [0, 1, 2])
                #expect(LogTestKit.containerFiles(in: dir) == initialFiles)
                continue
            }
            if let prev = records.last {
                #expect(lsn > prev)
                #expect(lsn.container == prev.container || lsn.container == prev.container + 1)
            }
            maxLogical = max(maxLogical, lsn.container)
            records.append(lsn)
            written += data.count
        }
        #expect(advances >= 10)
        #expect(maxLogical >= 25, "writing 10 × the capacity of 3 containers needs about 30 logical containers")
        try log.flush()
        try log.advanceBase(to: log.durableLSN)
        // Moving the base backwards is refused.
        #expect(LogTestKit.errorCode { try log.advanceBase(to: records[0]) } == .invalidArgument)

        func verify(_ log: LogStore, _ when: Comment) throws {
            let base = log.baseLSN
            let live = records.enumerated().filter { $0.element >= base }
            #expect(!live.isEmpty)
            for (i, lsn) in live { #expect(try log.read(lsn).data == LogTestKit.randomPayload(i, length: length(i)), when) }
            for (_, lsn) in records.enumerated().filter({ $0.element < base }).suffix(50) {
                #expect(LogTestKit.errorCode { _ = try log.read(lsn) } == .notFound, "below the base: \(when)")
            }
            let all = try LogTestKit.allRecords(log)
            #expect(all.map(\.lsn) == live.map(\.element), when)
        }
        try verify(log, "open")
        let base = log.baseLSN
        let logicals = log.info().containers.map(\.logicalID)
        try log.close()
        #expect(LogTestKit.containerFiles(in: dir) == initialFiles)

        let again = try LogStore.open(at: dir)
        #expect(again.baseLSN == base)
        #expect(again.info().containers.map(\.logicalID) == logicals)
        try verify(again, "after reopen")
        try again.close()
    }

    @Test("the block cache's eviction queue stays bounded while recycling evicts its blocks and it stays under its byte budget")
    func blockCacheQueueStaysBounded() throws {
        let dir = LogTestKit.temporaryPath("cachequeue")
        defer { LogTestKit.remove(dir) }
        var open = LogOpenOptions()
        open.readCacheBytes = 64 << 20  // never reached: only recycling removes blocks from the cache
        let containerSize: UInt64 = 512 * 1024
        let log = try LogStore.create(
            at: dir, options: LogTestKit.options(containerSize: containerSize, containerCount: 4, blockSize: 4096, codec: .lz4),
            openOptions: open)
        let payload = [UInt8](repeating: 7, count: 3000)
        var mostBlocks = 0
        var overLong: [String] = []
        for round in 0..<60 {
            var lsns: [LSN] = []
            for _ in 0..<100 { lsns.append(try log.append(payload)) }
            try log.flush()
            for l in lsns { _ = try log.read(l) }
            // Right after the reads' puts (before recycling evicts): at most 2 keys per block + 1024.
            let (keys, blocks) = log.core.cache.queueLength
            if keys > 2 * blocks + 1024 { overLong.append("round \(round): \(keys) keys queued for \(blocks) cached blocks") }
            mostBlocks = max(mostBlocks, blocks)
            try log.advanceBase(to: lsns[lsns.count - 1])
        }
        #expect(overLong.isEmpty, "\(overLong.count) rounds, the last \(overLong.last ?? "")")
        #expect(log.core.cache.residentBytes < 64 << 20)
        #expect(mostBlocks < 2000, "recycling keeps the cache to the blocks of a few containers")
        try log.close()
    }

    // MARK: Reopen and locking

    @Test("reopen after a clean close reports a clean shutdown; one writer at a time")
    func reopenAndLock() throws {
        let dir = LogTestKit.temporaryPath("reopen")
        defer { LogTestKit.remove(dir) }
        let log = try LogStore.create(at: dir, options: LogTestKit.options())
        let lsn = try log.append(Array("x".utf8))
        try log.flush(upTo: lsn)
        // A second writable open is refused while the first holds the log; a read-only open works.
        #expect(LogTestKit.errorCode { _ = try LogStore.open(at: dir) } == .locked)
        let reader = try LogStore.open(at: dir, options: LogOpenOptions(readOnly: true))
        #expect(try reader.read(lsn).data == Array("x".utf8))
        #expect(LogTestKit.errorCode { _ = try reader.append([1]) } == .readOnly)
        try reader.close()
        try log.close()
        try log.close()  // idempotent

        for round in 0..<3 {
            let again = try LogStore.open(at: dir)
            #expect(again.recoveryReport.cleanShutdown, "round \(round)")
            #expect(again.recoveryReport.tornTail == nil)
            #expect(again.recoveryReport.lastLSN == lsn)
            #expect(try again.read(lsn).data == Array("x".utf8))
            #expect(again.info().epoch == UInt32(2 + round))
            try again.close()
        }
        #expect(LogTestKit.errorCode { _ = try LogStore.create(at: dir, options: LogTestKit.options()) } == .invalidArgument, "a log already exists")
        #expect(LogTestKit.errorCode { _ = try LogStore.open(at: dir + "-missing") } == .notFound)
    }

    // MARK: Helpers

    private func firstBlockHeader(_ dir: String) throws -> BlockHeader {
        let handle = try #require(FileHandle(forReadingAtPath: dir + "/" + Format.defaultContainerPrefix + "000000"))
        defer { try? handle.close() }
        try handle.seek(toOffset: UInt64(Format.containerDataStart))
        let bytes = [UInt8](try #require(try handle.read(upToCount: BlockHeader.size)))
        return try bytes.withUnsafeBytes { try BlockHeader.decode($0) }
    }
}
