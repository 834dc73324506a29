// Checkpoints larger than one log record: the encoded checkpoint is cut into `checkpointPart` data
// records, and the restart area is a small `checkpointIndex` naming them, with the whole checkpoint's
// length and CRC32C. Specified in docs/format/tm-records.md, "Checkpoints in parts".

import LogFormat
import LogStore

extension TransactionManager {
    /// Writes an encoded checkpoint as `stream`'s restart area: in one record when it fits in
    /// `maxRecordSize`, otherwise as parts followed by an index. Returns the restart record's LSN, and
    /// whether it went in through the reservation of `room` bytes the TM holds for it (only a restart
    /// record of at most `room` bytes does; 0: the TM holds none).
    ///
    /// The stream's base moves as ``LogStream/writeRestartArea(_:coveredThrough:usingReservation:)``
    /// moves it: to the restart record when nothing of the stream came after `coveredThrough`, else to
    /// `coveredThrough`. The parts are appended after the snapshot's covered-through LSN, so the base never
    /// passes them. A crash before the restart area is durable leaves the previous checkpoint in force;
    /// recovery skips the orphaned parts as it skips every part record.
    static func writeCheckpoint(
        _ encoded: [UInt8], tm: GUID, clock: UInt64, to stream: LogStream, maxRecordSize: Int, coveredThrough: LSN?, room: Int = 0
    ) throws -> (lsn: LSN, usedRoom: Bool) {
        func restartArea(_ bytes: [UInt8]) throws -> (lsn: LSN, usedRoom: Bool) {
            let useRoom = room > 0 && bytes.count <= room
            if let coveredThrough {
                return (try stream.writeRestartArea(bytes, coveredThrough: coveredThrough, usingReservation: useRoom), useRoom)
            }
            return (try stream.writeRestartArea(bytes, usingReservation: useRoom), useRoom)
        }
        if encoded.count <= maxRecordSize { return try restartArea(encoded) }
        let slice = maxRecordSize - TMRecord.partOverhead
        guard slice > 0 else {
            throw LogError(.invalidArgument, "the log's maximum record size (\(maxRecordSize) bytes) cannot hold a checkpoint part")
        }
        let indexSize = restartRecordSize(checkpointSize: encoded.count, maxRecordSize: maxRecordSize)
        let count = (indexSize - TMRecord.indexOverhead) / 8
        guard indexSize <= maxRecordSize, count <= Int(UInt32.max) else {
            throw LogError(
                .invalidArgument,
                "a checkpoint of \(encoded.count) bytes needs \(count) parts, more than an index record of at most \(maxRecordSize) bytes can name")
        }
        var parts: [LSN] = []
        parts.reserveCapacity(count)
        for i in 0..<count {
            let start = i * slice
            let part = TMRecord.checkpointPart(index: UInt32(i), count: UInt32(count), bytes: Array(encoded[start..<min(encoded.count, start + slice)]))
            parts.append(try stream.append(part.encode(clock: clock)))
        }
        let index = TMCheckpointIndex(tm: tm, totalLength: UInt64(encoded.count), crc: CRC32C.checksum(encoded), parts: parts)
        return try restartArea(TMRecord.checkpointIndex(index).encode(clock: clock))
    }

    /// Bytes of the restart record a checkpoint of `checkpointSize` encoded bytes is written with: itself
    /// when it fits in one record, else the index of its parts.
    static func restartRecordSize(checkpointSize: Int, maxRecordSize: Int) -> Int {
        let slice = maxRecordSize - TMRecord.partOverhead
        guard checkpointSize > maxRecordSize, slice > 0 else { return checkpointSize }
        let (quotient, remainder) = checkpointSize.quotientAndRemainder(dividingBy: slice)
        return TMRecord.indexOverhead + 8 * (quotient + (remainder > 0 ? 1 : 0))
    }

    /// The checkpoint a restart record holds, directly or through the parts its index names. `read`
    /// returns the record at an LSN; every part must be a record of the restart record's stream.
    /// `beforeEachPart` runs before each part is read (recovery's cancellation check: a checkpoint may
    /// have thousands of parts) and may throw to stop the load.
    ///
    /// - Throws: `corrupt` when the restart area is neither a checkpoint nor an index, or when a part is
    ///   missing, out of place, of another stream, or the reassembled bytes do not match the index's
    ///   length and CRC32C or do not decode as a checkpoint of the index's TM.
    static func loadCheckpoint(
        _ restart: LogRecord, read: (LSN) throws -> LogRecord, beforeEachPart: () throws -> Void = {}
    ) throws -> TMCheckpoint {
        switch try TMRecord.decode(restart.data).record {
        case .checkpoint(let cp):
            return cp
        case .checkpointIndex(let index):
            return try assembleCheckpoint(index, at: restart.lsn, beforeEachPart: beforeEachPart) { lsn in
                let r = try read(lsn)
                guard r.stream == restart.stream, r.type == .data else {
                    throw LogError(.corrupt, "checkpoint part \(lsn) is not a data record of the TM's stream", lsn: lsn)
                }
                return r.data
            }
        default:
            throw LogError(.corrupt, "the restart area is not a TM checkpoint", lsn: restart.lsn)
        }
    }

    /// Reassembles and checks the checkpoint `index` (the restart record at `at`) describes.
    static func assembleCheckpoint(
        _ index: TMCheckpointIndex, at lsn: LSN, beforeEachPart: () throws -> Void = {}, read: (LSN) throws -> [UInt8]
    ) throws -> TMCheckpoint {
        func corrupt(_ what: String) -> LogError { LogError(.corrupt, "checkpoint index \(lsn): \(what)", lsn: lsn) }
        var bytes: [UInt8] = []
        for (i, partLSN) in index.parts.enumerated() {
            try beforeEachPart()
            let data: [UInt8]
            do { data = try read(partLSN) } catch let e as LogError where e.code == .notFound || e.code == .invalidArgument {
                throw corrupt("part \(i) at \(partLSN) cannot be read: \(e.message)")
            }
            guard case .checkpointPart(let n, let count, let slice) = try TMRecord.decode(data).record else {
                throw corrupt("the record at \(partLSN) is not a checkpoint part")
            }
            guard Int(n) == i, Int(count) == index.parts.count else {
                throw corrupt("the record at \(partLSN) is part \(n) of \(count), expected \(i) of \(index.parts.count)")
            }
            let (total, overflow) = bytes.count.addingReportingOverflow(slice.count)
            guard !overflow, UInt64(total) <= index.totalLength else {
                throw corrupt("the parts hold more than the \(index.totalLength) bytes the index names")
            }
            bytes += slice
        }
        guard UInt64(bytes.count) == index.totalLength else {
            throw corrupt("the parts hold \(bytes.count) bytes, the index names \(index.totalLength)")
        }
        let crc = CRC32C.checksum(bytes)
        guard crc == index.crc else { throw corrupt("the parts' CRC32C is \(crc), the index holds \(index.crc)") }
        guard case .checkpoint(let cp) = try TMRecord.decode(bytes).record, cp.tm == index.tm else {
            throw corrupt("the reassembled parts are not a checkpoint of TM \(index.tm)")
        }
        return cp
    }
}

/// For the fuzz target `FuzzTMCheckpointParts` (tools/fuzz): loads the checkpoint that the restart record
/// `restart` holds, directly or through the parts its index names, and returns its TM's id. The record at
/// an LSN is `records[lsn.rawValue % records.count]` (none when `records` is empty: `not-found`, as for
/// a part recycled away). Throws what recovery would: `corrupt` or `unsupported-version`.
package func loadTMCheckpointForFuzzing(restart: [UInt8], records: [[UInt8]]) throws -> GUID {
    switch try TMRecord.decode(restart).record {
    case .checkpoint(let cp):
        return cp.tm
    case .checkpointIndex(let index):
        let cp = try TransactionManager.assembleCheckpoint(index, at: .null) { lsn in
            guard !records.isEmpty else { throw LogError(.notFound, "no record at \(lsn)", lsn: lsn) }
            return records[Int(lsn.rawValue % UInt64(records.count))]
        }
        return cp.tm
    default:
        throw LogError(.corrupt, "the restart area is not a TM checkpoint")
    }
}
