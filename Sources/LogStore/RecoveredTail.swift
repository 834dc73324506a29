// A writable open makes the tail it recovered durable before the base file says it is, also when the
// page cache holds blocks whose writeback the device failed (docs/RELIABILITY.md, eleventh review).

import LogFormat

enum RecoveredTail {
    /// Makes the recovered blocks of the tail container durable: writes the ones no evidence proves
    /// durable back where they are, then fdatasyncs the container.
    ///
    /// An fdatasync alone proves nothing about blocks recovery read from the page cache. When a sync of
    /// the session that wrote them failed, Linux marked their pages clean without the device having them
    /// (fsyncgate): reads still return them, and a later fdatasync of the file succeeds without writing
    /// them. The log fails on that error, and reopening it is how it goes on; that open found the blocks,
    /// synced the tail (nothing dirty: success), recorded them under the base file's durable watermark and
    /// wrote new, acknowledged blocks after them. A power loss then left a hole below the watermark: the
    /// next open failed with `corrupt`, and the acknowledged records behind the hole were out of reach.
    /// Written again, the pages are dirty, so the fdatasync writes them or fails.
    ///
    /// Only the blocks after the last proven durable one are written: blocks below the base file's scan
    /// start in that container were synced before it was recorded, and those up to the durable watermark
    /// or a block's durable hint were synced by the session that recorded it. After a clean close there
    /// are none; after a crash, about what the writer had not synced yet.
    static func makeDurable(io: any FileIO, fd: Int32, meta: BaseRecord, recovered: RecoveryResult) throws {
        let end = recovered.end.blockOffset
        var offset = unprovenStart(meta: meta, recovered: recovered)
        if offset < end {
            var buffer = [UInt8](repeating: 0, count: Int(min(end - offset, 1 << 20)))
            while offset < end {
                let n = Int(min(UInt64(buffer.count), end - offset))
                let got = try buffer.withUnsafeMutableBytes { try io.readFully(fd, into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<n]), at: offset) }
                guard got == n else { throw LogError(.io, "the tail container ended at \(offset + UInt64(got)) while its recovered blocks were written back", offset: offset) }
                try buffer.withUnsafeBytes { try io.writeAll(fd, [UnsafeRawBufferPointer(rebasing: $0[0..<n])], at: offset) }
                offset += UInt64(n)
            }
        }
        try io.fdatasync(fd)
    }

    /// The offset in the tail container (logical `recovered.end.container`) from which the recovered
    /// blocks are not proven durable: the container's data start, or the base file's scan start there, or
    /// the block holding the highest LSN the durable watermark or a block's durable hint proves, whichever
    /// is last. That block itself is proven; starting at it costs one block and keeps this simple.
    static func unprovenStart(meta: BaseRecord, recovered: RecoveryResult) -> UInt64 {
        let tail = recovered.end.container
        var start = UInt64(Format.containerDataStart)
        if meta.scanStart.isValid, meta.scanStart.container == tail { start = max(start, meta.scanStart.blockOffset) }
        let proven = LogCore.provenDurable(meta: meta, found: recovered)
        if proven.isValid, proven.container == tail { start = max(start, proven.blockOffset) }
        return start
    }
}
