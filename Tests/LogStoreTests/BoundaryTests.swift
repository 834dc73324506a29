// Edge cases of block and container layout: exact fits, jumbo records, empty and largest records, the
// 512-records-per-block limit, container rollover, and a crash image taken right after a rollover.
//
// Layout facts used below (docs/format): a block is a 64-byte header plus payload, rounded up to 512
// bytes on disk; a normal block's payload holds blockSize - 64 bytes; a record takes 24 bytes of header
// plus its data padded to 8; the first block of a container is at offset 4096.

import Foundation
import Testing
@testable import LogStore

@Suite("Boundary")
struct BoundaryTests {
    static let header = BlockHeader.size  // 64

    // MARK: Exact fill, one byte more

    @Test("a record exactly filling a block, and one byte larger", arguments: [Codec.none, .lz4])
    func exactFillAndOneMore(codec: Codec) async throws {
        let dir = LogTestKit.temporaryPath("exact")
        defer { LogTestKit.remove(dir) }
        let blockSize = 4096
        let log = try LogStore.create(at: dir, options: LogTestKit.options(containerSize: 1 << 20, blockSize: blockSize, codec: codec))
        let capacity = blockSize - Self.header  // 4032
        let exact = capacity - RecordHeader.size  // 4008: footprint 4032
        #expect(RecordHeader.footprint(dataLength: exact) == capacity)
        #expect(RecordHeader.footprint(dataLength: exact + 1) == capacity + 8)

        let sizes = [exact, 1, exact + 1, 10, capacity - 40 - RecordHeader.size, 0, 7]
        var lsns: [LSN] = []
        for (i, n) in sizes.enumerated() { lsns.append(try log.append(LogTestKit.randomPayload(i, length: n))) }

        // 1. The exactly-filling record has a block of its own; the next record starts a new block.
        #expect(lsns[0].container == 1)
        #expect(lsns[0].blockOffset == 4096)
        #expect(lsns[0].slot == 0)
        #expect(lsns[1].slot == 0)
        #expect(lsns[1].blockOffset > lsns[0].blockOffset)
        // 2. One byte more does not fit a normal block: it gets a (jumbo) block of its own.
        #expect(lsns[2].slot == 0)
        #expect(lsns[2].blockOffset > lsns[1].blockOffset)
        #expect(lsns[3].slot == 0)
        #expect(lsns[3].blockOffset > lsns[2].blockOffset)
        // 3. Two records that together fill the payload exactly share a block; the next one does not.
        //    Record 3 (10 bytes) takes 40 bytes, record 4 takes the remaining capacity - 40.
        #expect(lsns[4].blockLSN == lsns[3].blockLSN)
        #expect(lsns[4].slot == 1)
        #expect(lsns[5].slot == 0)
        #expect(lsns[5].blockOffset > lsns[4].blockOffset)
        #expect(lsns[6].blockLSN == lsns[5].blockLSN)
        #expect(lsns[6].slot == 1)
        if codec == .none {
            // Uncompressed, the on-disk positions follow exactly from the sizes.
            #expect(lsns[1].blockOffset == 4096 + 4096)  // 64 + 4032 = 4096
            #expect(lsns[2].blockOffset == 8192 + 512)  // 64 + 32 rounds up to 512
            #expect(lsns[3].blockOffset == 8704 + 4608)  // 64 + 4040 = 4104 rounds up to 4608
            #expect(lsns[5].blockOffset == 13312 + 4096)
        }

        func check(_ log: LogStore, _ when: Comment) throws {
            for (i, n) in sizes.enumerated() {
                let r = try log.read(lsns[i])
                #expect(r.data == LogTestKit.randomPayload(i, length: n), when)
            }
            #expect(try LogTestKit.allRecords(log).map(\.lsn) == lsns, when)
        }
        try check(log, "unflushed")
        try await log.flush()
        try check(log, "flushed")
        try log.close()
        let again = try LogStore.open(at: dir)
        try check(again, "reopened")
        // After a clean close the next open starts at the end: nothing to rescan.
        #expect(again.recoveryReport.cleanShutdown && again.recoveryReport.blocksScanned == 0)
        #expect(Set(try LogTestKit.allRecords(again).map(\.lsn.blockLSN)).count == Set(lsns.map(\.blockLSN)).count)
        try again.close()
    }

    // MARK: Records larger than a block

    @Test("records spanning more than the block size", arguments: [Codec.none, .lz4, .zlib(level: 9)])
    func spanningRecords(codec: Codec) async throws {
        let dir = LogTestKit.temporaryPath("span")
        defer { LogTestKit.remove(dir) }
        let log = try LogStore.create(at: dir, options: LogTestKit.options(containerSize: 1 << 20, blockSize: 4096, codec: codec))
        let sizes = [4096, 12_288, 100_000, 65_539, 4033, 250_001]
        var entries: [(LSN, [UInt8])] = []
        for (i, n) in sizes.enumerated() {
            let big = i % 2 == 0 ? LogTestKit.randomPayload(i, length: n) : LogTestKit.textPayload(i, length: n)
            let small = Array("between \(i)".utf8)
            entries.append((try log.append(big), big))
            entries.append((try log.append(small), small))
        }
        for k in stride(from: 0, to: entries.count, by: 2) {
            let big = entries[k].0
            let small = entries[k + 1].0
            #expect(big.slot == 0, "a record larger than a block starts its own block")
            #expect(small.slot == 0, "and nothing shares that block")
            #expect(small > big)
            if big.container == small.container {
                #expect(Int(small.blockOffset - big.blockOffset) >= (codec == .none ? sizes[k / 2] : 512))
            }
        }
        func check(_ log: LogStore, _ when: Comment) throws {
            for (lsn, data) in entries { #expect(try log.read(lsn).data == data, when) }
            let all = try LogTestKit.allRecords(log)
            #expect(all.map(\.lsn) == entries.map(\.0), when)
            #expect(all.map(\.data) == entries.map(\.1), when)
        }
        try check(log, "unflushed")
        try await log.flush()
        try check(log, "flushed")
        try log.close()
        var options = LogOpenOptions()
        options.readCacheBytes = 0
        let again = try LogStore.open(at: dir, options: options)
        try check(again, "reopened")
        try again.close()
    }

    // MARK: Empty records

    @Test("empty records", arguments: [Codec.none, .lz4, .zlib(level: 1)])
    func emptyRecords(codec: Codec) async throws {
        let dir = LogTestKit.temporaryPath("empty")
        defer { LogTestKit.remove(dir) }
        let log = try LogStore.create(at: dir, options: LogTestKit.options(blockSize: 4096, codec: codec))
        // First a block holding nothing but one empty record.
        let lone = try log.append([])
        try await log.flush(upTo: lone)
        var entries: [(LSN, [UInt8])] = [(lone, [])]
        for i in 0..<300 {
            let data: [UInt8] = i % 3 == 0 ? [] : Array("r\(i)".utf8)
            entries.append((try log.append(data, previous: entries.last!.0), data))
        }
        #expect(entries[1].0.blockLSN != lone.blockLSN)
        #expect(Set(entries.map(\.0)).count == entries.count)
        func check(_ log: LogStore, _ when: Comment) throws {
            for (lsn, data) in entries {
                let r = try log.read(lsn)
                #expect(r.data == data, when)
                #expect(r.data.isEmpty == data.isEmpty)
            }
            let all = try LogTestKit.allRecords(log)
            #expect(all.map(\.lsn) == entries.map(\.0), when)
            #expect(all.map(\.data) == entries.map(\.1), when)
        }
        try check(log, "unflushed")
        try await log.flush()
        try log.close()
        let again = try LogStore.open(at: dir)
        try check(again, "reopened")
        try again.close()
    }

    // MARK: The largest record

    @Test("the largest record fits; one byte more is refused", arguments: [Codec.none, .lz4])
    func largestRecord(codec: Codec) async throws {
        let dir = LogTestKit.temporaryPath("largest")
        defer { LogTestKit.remove(dir) }
        let containerSize: UInt64 = 2 << 20
        let log = try LogStore.create(at: dir, options: LogTestKit.options(containerSize: containerSize, containerCount: 3, blockSize: 65536, codec: codec))
        let max = log.maxRecordSize
        #expect(max == Int(LogLimits.largestRecord(containerSize: containerSize)))
        #expect(max == Int(containerSize) - Format.containerDataStart - Self.header - RecordHeader.size)

        let small = try log.append(Array("small".utf8))
        let giant = codec == .none ? LogTestKit.randomPayload(1, length: max) : LogTestKit.textPayload(1, length: max)
        let giantLSN = try log.append(giant)
        // It needs a whole container: it starts the next one.
        #expect(small.container == 1)
        #expect(giantLSN.container == 2)
        #expect(giantLSN.blockOffset == UInt64(Format.containerDataStart))
        #expect(giantLSN.slot == 0)

        #expect(LogTestKit.errorCode { _ = try log.append([UInt8](repeating: 7, count: max + 1)) } == .invalidArgument)
        // The refusal changed nothing.
        #expect(log.lastLSN == giantLSN)
        let after = try log.append(Array("after".utf8))
        if codec == .none {
            #expect(after.container == 3, "the uncompressed giant record filled container 2")
            #expect(after.blockOffset == UInt64(Format.containerDataStart))
        } else {
            #expect(after > giantLSN)
        }

        #expect(try log.read(giantLSN).data == giant)
        try await log.flush()
        #expect(try log.read(giantLSN).data == giant)
        try log.close()

        let again = try LogStore.open(at: dir)
        #expect(try again.read(giantLSN).data == giant)
        #expect(try again.read(after).data == Array("after".utf8))
        let all = try LogTestKit.allRecords(again)
        #expect(all.map(\.lsn) == [small, giantLSN, after])
        #expect(all.map(\.data.count) == [5, max, 5])
        try again.close()
    }

    @Test("a configured maxRecordSize is enforced exactly")
    func configuredMaxRecordSize() throws {
        let dir = LogTestKit.temporaryPath("maxrec")
        defer { LogTestKit.remove(dir) }
        var options = LogTestKit.options(blockSize: 4096)
        options.maxRecordSize = 1000
        let log = try LogStore.create(at: dir, options: options)
        #expect(log.maxRecordSize == 1000)
        let ok = try log.append([UInt8](repeating: 1, count: 1000))
        #expect(LogTestKit.errorCode { _ = try log.append([UInt8](repeating: 1, count: 1001)) } == .invalidArgument)
        try log.flush(upTo: ok)
        try log.close()
        let again = try LogStore.open(at: dir)
        #expect(again.maxRecordSize == 1000, "the limit is stored in the base file")
        #expect(try again.read(ok).data.count == 1000)
        try again.close()
    }

    // MARK: 512 records per block

    @Test("512 records fill a block's slots; the 513th starts a new block", arguments: [0, 8])
    func slotsPerBlock(recordSize: Int) async throws {
        let dir = LogTestKit.temporaryPath("slots")
        defer { LogTestKit.remove(dir) }
        let log = try LogStore.create(at: dir, options: LogTestKit.options(blockSize: 65536, codec: .lz4))
        var lsns: [LSN] = []
        for i in 0..<(2 * 512 + 1) {
            let data = recordSize == 0 ? [] : LogTestKit.randomPayload(i, length: recordSize)
            lsns.append(try log.append(data))
        }
        let first = lsns[0].blockLSN
        #expect(lsns[0..<512].allSatisfy { $0.blockLSN == first })
        #expect(lsns[0..<512].map(\.slot) == (0..<512).map { UInt16($0) })
        #expect(lsns[511].slot == LSN.maxSlot)
        #expect(lsns[512].slot == 0)
        #expect(lsns[512].blockOffset > lsns[511].blockOffset)
        #expect(lsns[512..<1024].allSatisfy { $0.blockLSN == lsns[512].blockLSN })
        #expect(lsns[1024].slot == 0)
        #expect(lsns[1024].blockOffset > lsns[1023].blockOffset)

        func check(_ log: LogStore, _ when: Comment) throws {
            for (i, lsn) in lsns.enumerated() {
                #expect(try log.read(lsn).data == (recordSize == 0 ? [] : LogTestKit.randomPayload(i, length: recordSize)), when)
            }
            #expect(try LogTestKit.allRecords(log).map(\.lsn) == lsns, when)
        }
        try check(log, "unflushed")
        try await log.flush()
        try log.close()
        let again = try LogStore.open(at: dir)
        try check(again, "reopened")
        #expect(again.recoveryReport.cleanShutdown && again.recoveryReport.blocksScanned == 0)
        #expect(Set(try LogTestKit.allRecords(again).map(\.lsn.blockLSN)).count == 3)
        try again.close()
    }

    // MARK: Container rollover

    @Test("container rollover: exactly full, then part full; records on both sides survive reopen")
    func containerRollover() async throws {
        let dir = LogTestKit.temporaryPath("rollover")
        defer { LogTestKit.remove(dir) }
        let containerSize: UInt64 = 512 * 1024
        let log = try LogStore.create(at: dir, options: LogTestKit.options(containerSize: containerSize, containerCount: 3, blockSize: 4096, codec: .none))
        let exact = 4096 - Self.header - RecordHeader.size  // one record fills one 4096-byte block
        let blocksPerContainer = (Int(containerSize) - Format.containerDataStart) / 4096  // 127
        var entries: [(LSN, [UInt8])] = []
        for i in 0..<(blocksPerContainer + 1) {
            let data = LogTestKit.randomPayload(i, length: exact)
            entries.append((try log.append(data), data))
        }
        // Container 1 is filled to its last byte; the next record starts container 2.
        let lastOfFirst = entries[blocksPerContainer - 1].0
        #expect(lastOfFirst.container == 1)
        #expect(lastOfFirst.blockOffset == containerSize - 4096)
        let firstOfSecond = entries[blocksPerContainer].0
        #expect(firstOfSecond.container == 2)
        #expect(firstOfSecond.blockOffset == UInt64(Format.containerDataStart))
        #expect(firstOfSecond.slot == 0)

        // Records of 2400 bytes take 2560 bytes each on disk (one per block); container 2 ends with a gap
        // of 1536 bytes, too small for one more.
        var i = entries.count
        while entries.last!.0.container == 2 {
            let data = LogTestKit.randomPayload(i, length: 2400)
            entries.append((try log.append(data), data))
            i += 1
        }
        let firstOfThird = entries.last!.0
        let lastOfSecond = entries[entries.count - 2].0
        #expect(firstOfThird.container == 3)
        #expect(firstOfThird.blockOffset == UInt64(Format.containerDataStart))
        #expect(lastOfSecond.container == 2)
        #expect(lastOfSecond.blockOffset + 2560 == containerSize - 1536)
        #expect(entries[blocksPerContainer + 1].0.blockOffset == UInt64(Format.containerDataStart) + 4096)
        for k in 0..<20 {
            let data = LogTestKit.textPayload(k, length: 100)
            entries.append((try log.append(data), data))
        }

        func check(_ log: LogStore, _ when: Comment) throws {
            for (lsn, data) in entries { #expect(try log.read(lsn).data == data, when) }
            let all = try LogTestKit.allRecords(log)
            #expect(all.map(\.lsn) == entries.map(\.0), when)
            #expect(all.map(\.data) == entries.map(\.1), when)
        }
        try check(log, "unflushed")
        try await log.flush()
        try check(log, "flushed")
        try log.close()
        let again = try LogStore.open(at: dir)
        #expect(again.recoveryReport.cleanShutdown)
        try check(again, "reopened")
        // Appending continues in container 3.
        let more = try again.append(Array("more".utf8))
        #expect(more.container == 3)
        try again.close()
    }

    @Test("a tailing cursor follows the log across a container rollover", arguments: [true, false])
    func tailingCursorAcrossRollover(exactlyFull: Bool) async throws {
        let dir = LogTestKit.temporaryPath("tail")
        defer { LogTestKit.remove(dir) }
        let containerSize: UInt64 = 512 * 1024
        let log = try LogStore.create(at: dir, options: LogTestKit.options(containerSize: containerSize, containerCount: 3, blockSize: 4096, codec: .none))
        let size = exactlyFull ? 4096 - Self.header - RecordHeader.size : 3000
        var lsns: [LSN] = []
        var cursor = try log.records()
        var seen: [LSN] = []
        // Fill container 1 flushing every record, so the open block is empty whenever the cursor catches up.
        var i = 0
        while true {
            let lsn = try log.append(LogTestKit.randomPayload(i, length: size))
            i += 1
            lsns.append(lsn)
            try await log.flush(upTo: lsn)
            while let r = try cursor.next() { seen.append(r.lsn) }
            #expect(seen == lsns)
            if lsn.container == 2 { break }
        }
        #expect(lsns.last?.container == 2)
        #expect(seen == lsns, "the cursor that reached the end of container 1 continues in container 2")
        try log.close()
    }

    @Test("a container filled to its last byte, then a crash: recovery continues in the next container")
    func exactlyFullContainerThenCrash() async throws {
        let dir = LogTestKit.temporaryPath("fullcrash")
        let image = dir + "-image"
        defer { for d in [dir, image] { LogTestKit.remove(d) } }
        let log = try LogStore.create(at: dir, options: LogTestKit.options(containerSize: 512 * 1024, containerCount: 2, blockSize: 4096, codec: .none))
        let exact = 4096 - Self.header - RecordHeader.size
        var entries: [(LSN, [UInt8])] = []
        for i in 0..<127 {
            let data = LogTestKit.randomPayload(i, length: exact)
            entries.append((try log.append(data), data))
        }
        #expect(entries.last!.0 == LSN(container: 1, blockOffset: 512 * 1024 - 4096, slot: 0))
        try await log.flush()
        try LogTestKit.snapshot(dir, to: image)
        try log.close()

        let recovered = try LogStore.open(at: image)
        #expect(!recovered.recoveryReport.cleanShutdown)
        #expect(recovered.lastLSN == entries.last!.0)
        let next = try recovered.append(Array("next".utf8))
        #expect(next == LSN(container: 2, blockOffset: UInt64(Format.containerDataStart), slot: 0))
        try await recovered.flush(upTo: next)
        try recovered.close()
        let again = try LogStore.open(at: image)
        let all = try LogTestKit.allRecords(again)
        #expect(all.map(\.lsn) == entries.map(\.0) + [next])
        #expect(all.dropLast().map(\.data) == entries.map(\.1))
        try again.close()
    }

    // MARK: Rollover, then a crash image

    @Test("rollover immediately followed by a crash (directory image taken without closing)")
    func rolloverThenCrashImage() async throws {
        let dir = LogTestKit.temporaryPath("rollcrash")
        let image1 = dir + "-image1"
        let image2 = dir + "-image2"
        defer { for d in [dir, image1, image2] { LogTestKit.remove(d) } }
        let log = try LogStore.create(at: dir, options: LogTestKit.options(containerSize: 512 * 1024, containerCount: 3, blockSize: 4096, codec: .lz4))
        var entries: [(LSN, [UInt8])] = []
        while entries.last?.0.container != 2 {
            let data = LogTestKit.randomPayload(entries.count, length: 1500)
            entries.append((try log.append(data), data))
        }
        // Image 1: the first record of container 2 was just flushed.
        try await log.flush(upTo: entries.last!.0)
        try LogTestKit.snapshot(dir, to: image1)
        // Image 2: records flushed to the end of container 2, then a record for container 3 appended but
        // not flushed.
        while entries.last?.0.container != 3 {
            let data = LogTestKit.randomPayload(entries.count, length: 1500)
            entries.append((try log.append(data), data))
        }
        let flushedCount2 = entries.count - 1
        try await log.flush(upTo: entries[flushedCount2 - 1].0)
        try LogTestKit.snapshot(dir, to: image2)
        try log.close()

        for (image, acked) in [(image1, entries.firstIndex { $0.0.container == 2 }! + 1), (image2, flushedCount2)] {
            let recovered = try LogStore.open(at: image)
            #expect(!recovered.recoveryReport.cleanShutdown, "the image was taken without closing")
            let all = try LogTestKit.allRecords(recovered)
            #expect(all.count >= acked, "every flushed record survives the crash")
            #expect(all.count <= entries.count)
            for (k, r) in all.enumerated() {
                #expect(r.lsn == entries[k].0, "records survive as a prefix at their LSNs")
                #expect(r.data == entries[k].1)
            }
            // The recovered log takes new records after what survived, and they survive a clean reopen.
            let next = try recovered.append(Array("after crash".utf8))
            #expect(next > all.last!.lsn)
            try await recovered.flush(upTo: next)
            try recovered.close()
            let reopened = try LogStore.open(at: image)
            #expect(reopened.recoveryReport.cleanShutdown)
            let again = try LogTestKit.allRecords(reopened)
            #expect(again.map(\.lsn) == all.map(\.lsn) + [next])
            try reopened.close()
        }
    }
}
