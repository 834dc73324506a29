// Checkpoints larger than the log's maximum record size: written as parts plus an index restart area,
// reassembled and checked by recovery, `open` and `list`; damaged or misplaced parts are `corrupt`.

import Foundation
import LogFormat
import LogStore
import Testing
@testable import TransactionManager
import TxLogTestSupport

@Suite struct CheckpointPartsTests {
    /// Records of at most 4 KiB, so a few dozen in-doubt transactions overflow one checkpoint record.
    static let smallRecords: LogCreateOptions = {
        var o = LogCreateOptions(containerSize: 1 << 20, containerCount: 4, blockSize: 8192)
        o.maxRecordSize = 4096
        return o
    }()

    /// Leaves `count` transactions prepared under a superior (in doubt), each with a 200-byte blob.
    static func prepareInDoubt(_ tm: TransactionManager, _ rm: ScriptedRM, count: Int) async throws -> [GUID: [UInt8]] {
        var blobs: [GUID: [UInt8]] = [:]
        for i in 0..<count {
            let tx = try tm.createTransaction(description: "branch \(i)")
            let blob = (0..<200).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ i) }
            _ = try rm.enlist(tx, info: blob)
            #expect(try await tx.enlistSuperior().prepare() == .prepared)
            blobs[tx.id] = blob
        }
        return blobs
    }

    @Test func aCheckpointLargerThanARecordIsWrittenInPartsAndRecovered() async throws {
        let dir = TMScratch("cp-parts")
        defer { dir.remove() }
        let (log, tm) = try dir.createOnline(log: Self.smallRecords)
        let a = try ScriptedRM.online(tm, "a")
        let blobs = try await Self.prepareInDoubt(tm, a, count: 60)

        let stream = try #require(tm.stream)
        let lastBefore = stream.lastLSN
        let cpLSN = try tm.checkpoint()
        // The restart area is an index; the parts follow the covered LSN, and the base stops there.
        let restart = try #require(try stream.readRestartArea())
        #expect(restart.lsn == cpLSN)
        guard case .checkpointIndex(let index) = try TMRecord.decode(restart.data).record else {
            Issue.record("the restart area is not a checkpoint index")
            return
        }
        #expect(index.tm == tm.id)
        #expect(index.parts.count >= 3)
        #expect(index.totalLength > UInt64(log.maxRecordSize))
        #expect(index.parts.allSatisfy { $0 > lastBefore && $0 < cpLSN })
        #expect(stream.baseLSN == lastBefore)
        let cp = try tmCheckpoint(tm)
        #expect(cp.transactions.count == 60)
        #expect(cp.coveredThrough == lastBefore)
        #expect(TransactionManager.list(log: log).first?.info?.transactionsAtCheckpoint == 60)
        // Part records are skipped by recovery's replay: one more record after the checkpoint is all it sees.
        let later = try tm.createTransaction()
        _ = try a.enlist(later)
        #expect(try await later.enlistSuperior().prepare() == .prepared)
        try log.close()  // a crash: no closing checkpoint

        let (log2, tm2) = try dir.reopenOnline()
        defer { try? log2.close() }
        #expect(tm2.id == tm.id)
        let stats = tm2.lastRecovery
        #expect(stats.checkpointLSN == cpLSN)
        #expect(stats.recordsScanned == 1)
        #expect(stats.inDoubt == 61)
        let a2 = try ScriptedRM.open(tm2, id: a.id)
        try a2.rm.recover()
        for (id, blob) in blobs {
            #expect(a2.kinds(id) == [.recover, .inDoubt])
            #expect(a2.notes.first { $0.transactionID == id }?.recoveryInformation == blob)
        }
        // A second checkpoint of the recovered TM is written in parts too and names every transaction.
        _ = try tm2.checkpoint()
        #expect(try tmCheckpoint(tm2).transactions.count == 61)
    }

    @Test func partsLeftByACrashBeforeTheIndexAreSkipped() async throws {
        let dir = TMScratch("cp-orphans")
        defer { dir.remove() }
        let (log, tm) = try dir.createOnline(log: Self.smallRecords)
        let a = try ScriptedRM.online(tm, "a")
        _ = try await Self.prepareInDoubt(tm, a, count: 3)
        let stream = try #require(tm.stream)
        let restartBefore = try #require(try stream.readRestartArea()).lsn
        // What a crash between the parts and the restart area leaves: parts no index names.
        for i in 0..<2 {
            let lsn = try stream.append(
                TMRecord.checkpointPart(index: UInt32(i), count: 3, bytes: [UInt8](repeating: 0xEE, count: 1000)).encode(clock: 1))
            try await stream.flush(upTo: lsn)
        }
        try log.close()

        let (log2, tm2) = try dir.reopenOnline()
        defer { try? log2.close() }
        #expect(tm2.lastRecovery.checkpointLSN == restartBefore)
        #expect(tm2.lastRecovery.inDoubt == 3)
        #expect(tm2.lastRecovery.recordsScanned == 1 + 3)  // rm-registered and three prepared records
    }

    @Test func anIndexTooLargeForARecordIsRefusedBeforeWriting() throws {
        let dir = TMScratch("cp-index-limit")
        defer { dir.remove() }
        let log = try LogStore.create(at: dir.path, options: Self.smallRecords)
        defer { try? log.close() }
        let stream = try log.createStream("ktm")
        let last = stream.lastLSN
        expectLogError(.invalidArgument) {
            _ = try TransactionManager.writeCheckpoint(
                [UInt8](repeating: 1, count: 10_000), tm: TMSample.tm, clock: 1, to: stream, maxRecordSize: 40, coveredThrough: nil)
        }
        expectLogError(.invalidArgument) {
            _ = try TransactionManager.writeCheckpoint([UInt8](repeating: 1, count: 100), tm: TMSample.tm, clock: 1, to: stream, maxRecordSize: 20, coveredThrough: nil)
        }
        #expect(stream.lastLSN == last)
    }

    /// docs/format/tm-records.md, "Checkpoints in parts", worked example: 12 000 bytes at 4096-byte records.
    @Test func workedExampleSizes() throws {
        let dir = TMScratch("cp-example")
        defer { dir.remove() }
        let log = try LogStore.create(at: dir.path, options: Self.smallRecords)
        defer { try? log.close() }
        let stream = try log.createStream("ktm")
        let encoded = (0..<12_000).map { UInt8(truncatingIfNeeded: $0) }
        let restart = try TransactionManager.writeCheckpoint(encoded, tm: TMSample.tm, clock: 1, to: stream, maxRecordSize: 4096, coveredThrough: nil).lsn
        let records = try dataRecords(stream)
        #expect(records.map(\.data.count) == [4096, 4096, 3892])
        let index = try stream.read(restart)
        #expect(index.data.count == 72)
        guard case .checkpointIndex(let x) = try TMRecord.decode(index.data).record else {
            Issue.record("not an index")
            return
        }
        #expect(x.parts == records.map(\.lsn))
        #expect(x.totalLength == 12_000 && x.crc == CRC32C.checksum(encoded))
        var joined: [UInt8] = []
        for r in records {
            guard case .checkpointPart(_, _, let bytes) = try TMRecord.decode(r.data).record else { continue }
            joined += bytes
        }
        #expect(joined == encoded)
    }

    // MARK: Reassembly checks

    /// The checkpoint sample cut into `count` parts at made-up LSNs 1…count, as a reader would see them.
    static func split(into count: Int) -> (index: TMCheckpointIndex, parts: [LSN: [UInt8]]) {
        let encoded = TMRecord.checkpoint(TMSample.checkpoint).encode(clock: 9)
        let slice = (encoded.count + count - 1) / count
        var parts: [LSN: [UInt8]] = [:]
        var lsns: [LSN] = []
        for i in 0..<count {
            let lsn = LSN(rawValue: UInt64(i + 1))
            let bytes = Array(encoded[min(encoded.count, i * slice)..<min(encoded.count, (i + 1) * slice)])
            parts[lsn] = TMRecord.checkpointPart(index: UInt32(i), count: UInt32(count), bytes: bytes).encode(clock: 9)
            lsns.append(lsn)
        }
        return (TMCheckpointIndex(tm: TMSample.tm, totalLength: UInt64(encoded.count), crc: CRC32C.checksum(encoded), parts: lsns), parts)
    }

    static func assemble(_ index: TMCheckpointIndex, _ parts: [LSN: [UInt8]]) throws -> TMCheckpoint {
        try TransactionManager.assembleCheckpoint(index, at: LSN(rawValue: 99)) { lsn in
            guard let p = parts[lsn] else { throw LogError(.notFound, "no record at \(lsn)") }
            return p
        }
    }

    @Test func reassemblyChecksEveryPart() throws {
        let (index, parts) = Self.split(into: 4)
        #expect(try Self.assemble(index, parts) == TMSample.checkpoint)

        var missing = parts
        missing[LSN(rawValue: 3)] = nil
        expectLogError(.corrupt) { _ = try Self.assemble(index, missing) }

        var swapped = index
        swapped.parts.swapAt(1, 2)
        expectLogError(.corrupt) { _ = try Self.assemble(swapped, parts) }

        var wrongCRC = index
        wrongCRC.crc ^= 1
        expectLogError(.corrupt) { _ = try Self.assemble(wrongCRC, parts) }

        for delta: Int64 in [-1, 1] {
            var wrongLength = index
            wrongLength.totalLength = UInt64(Int64(index.totalLength) + delta)
            expectLogError(.corrupt) { _ = try Self.assemble(wrongLength, parts) }
        }

        var otherTM = index
        otherTM.tm = TMSample.rmA
        expectLogError(.corrupt) { _ = try Self.assemble(otherTM, parts) }

        var notAPart = parts
        notAPart[LSN(rawValue: 2)] = TMRecord.end(TMSample.tx).encode(clock: 1)
        expectLogError(.corrupt) { _ = try Self.assemble(index, notAPart) }

        // Parts of another split (a different count) do not fit this index.
        let (_, other) = Self.split(into: 5)
        var mixed = parts
        mixed[LSN(rawValue: 4)] = other[LSN(rawValue: 4)]
        expectLogError(.corrupt) { _ = try Self.assemble(index, mixed) }
    }

    /// docs/format/tm-records.md, "Checkpoints in parts": `open(log:stream:)` takes the TM's id from the
    /// index without reading the parts; `list` (its RM and transaction counts) and `open(log:id:)` reassemble
    /// them, so to those an index naming a record that is not a part is `corrupt`.
    @Test func whoReassemblesTheParts() throws {
        let dir = TMScratch("cp-who")
        defer { dir.remove() }
        let log = try LogStore.create(at: dir.path, options: Self.smallRecords)
        defer { try? log.close() }
        let notAPart = try log.createStream("other").append([1, 2, 3])
        let ktm = try log.createStream(TransactionManager.defaultStreamName)
        let index = TMCheckpointIndex(tm: TMSample.tm, totalLength: 247, crc: 0, parts: [notAPart])
        _ = try ktm.writeRestartArea(TMRecord.checkpointIndex(index).encode(clock: 9))

        let entries = TransactionManager.list(log: log)
        #expect(entries.map(\.stream) == [TransactionManager.defaultStreamName])
        #expect(entries.first?.error?.code == .corrupt, "\(entries)")
        expectLogError(.corrupt) { _ = try TransactionManager.open(log: log, id: TMSample.tm) }
        let tm = try TransactionManager.open(log: log)
        #expect(tm.id == TMSample.tm)
        tm.stop()
    }

    @Test func aCheckpointThatFitsIsStillOneRecord() throws {
        let dir = TMScratch("cp-one")
        defer { dir.remove() }
        let log = try LogStore.create(at: dir.path, options: Self.smallRecords)
        defer { try? log.close() }
        let tm = try TransactionManager.create(log: log)
        try tm.recover()
        _ = try tm.checkpoint()
        let stream = try #require(tm.stream)
        let restart = try #require(try stream.readRestartArea())
        #expect(try TMRecord.decode(restart.data).record.kind == .checkpoint)
    }
}

/// Replays the seed corpus of the `FuzzTMCheckpointParts` fuzz target (tools/fuzz) through the call it makes:
/// every seed loads the sample checkpoint (the fixture `tm-checkpoint.bin`, whole or in parts), and each
/// seed with one byte changed or cut short loads it too or throws a typed error.
@Suite struct TMCheckpointPartsCorpusTests {
    /// The target's input framing: u32 length-prefixed records, the first the restart record.
    static func records(_ input: [UInt8]) -> [[UInt8]] {
        var out: [[UInt8]] = []
        var at = 0
        while input.count - at >= 4 {
            let n = Int(input[at]) | Int(input[at + 1]) << 8 | Int(input[at + 2]) << 16 | Int(input[at + 3]) << 24
            at += 4
            let end = n <= input.count - at ? at + n : input.count
            out.append(Array(input[at..<end]))
            at = end
        }
        return out
    }

    static func load(_ input: [UInt8]) throws -> GUID? {
        let r = records(input)
        guard let restart = r.first else { return nil }
        return try loadTMCheckpointForFuzzing(restart: restart, records: Array(r.dropFirst()))
    }

    @Test func seedsLoadTheSampleCheckpoint() throws {
        let seeds = FuzzCorpus.seeds("FuzzTMCheckpointParts")
        #expect(seeds.count >= 3)
        for (name, input) in seeds {
            #expect(try Self.load(input) == TMSample.tm, "\(name)")
            for damaged in FuzzCorpus.damagedCopies(of: input, count: 300) {
                do { _ = try Self.load(damaged) } catch let e as LogError {
                    #expect(e.code == .corrupt || e.code == .unsupportedVersion || e.code == .notFound, "\(name): \(e)")
                }
            }
        }
    }
}
