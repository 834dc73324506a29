// The largest container (4 GiB). An LSN's block offset stops at 4 GiB − 512, so the position after a
// 4 GiB container's last block must be no later than that: a block that ended at 4 GiB left the end of
// the log without an LSN. It was masked to offset 0, so a clean close recorded the scan start at the
// container's header, and the next open took the log's end to be there (and would have written the next
// block over the header). Blocks now end by 4 GiB − 512 in such a container (docs/format/container.md).
//
// Opt-in (TXLOG_LONG_TESTS=1): it writes 4 GiB of records. Containers are created sparse (the zero fill
// becomes a truncate), so the disk holds only what the records take.

import Foundation
import LogFormat
import Testing
@testable import LogStore

/// Creates container files sparse: a write of zeros at or beyond the end of a file extends it instead.
struct SparseZeroFillIO: ForwardingFileIO {
    let base: any FileIO = PosixFileIO()

    func pwritev(_ fd: Int32, _ buffers: [UnsafeRawBufferPointer], at offset: UInt64) throws -> Int {
        let total = buffers.reduce(0) { $0 + $1.count }
        if total > 0, buffers.allSatisfy({ $0.allSatisfy { $0 == 0 } }), try base.fileSize(fd) <= offset {
            try base.truncate(fd, to: offset + UInt64(total))
            return total
        }
        return try base.pwritev(fd, buffers, at: offset)
    }
}

@Suite(.enabled(if: ProcessInfo.processInfo.environment["TXLOG_LONG_TESTS"] == "1", "writes 4 GiB; TXLOG_LONG_TESTS=1"))
struct FourGiBContainerTests {
    @Test("a 4 GiB container filled to its last usable byte: close, reopen, append and reopen keep every record")
    func fullFourGiBContainer() async throws {
        // On a thread of its own: minutes of synchronous writes on the cooperative pool held a thread the
        // other opt-in tests' waits (a `CrashTests` kill) needed. Failures come back as text.
        let failures = try await onOwnThread { () throws -> [String] in
            var failures: [String] = []
            let dir = LogTestKit.temporaryPath("4gib")
            defer { LogTestKit.remove(dir) }
            let io = SparseZeroFillIO()
            let size = Format.maxContainerSize
            var options = LogCreateOptions(containerSize: size, containerCount: 2, blockSize: 64 * 1024, codec: .none)
            options.maxRecordSize = 8 << 20
            let log = try LogStore.create(at: dir, options: options, io: io)
            func diskLength(_ dataLength: Int) -> UInt64 {
                UInt64(roundUp(BlockHeader.size + RecordHeader.footprint(dataLength: dataLength), to: Format.sectorSize))
            }
            // Records of 8 MiB − 4 KiB (a block each) until the next would not fit before 4 GiB.
            // Cheap to build and to compare (4 GiB of them): a byte repeated, the index in front.
            func payload(_ i: Int, length: Int) -> [UInt8] {
                var bytes = [UInt8](repeating: UInt8(truncatingIfNeeded: i &* 31 &+ 7), count: length)
                withUnsafeBytes(of: UInt64(i).littleEndian) { for (k, b) in $0.enumerated() where k < length { bytes[k] = b } }
                return bytes
            }
            let big = (8 << 20) - 4096
            var written: [(LSN, Int)] = []
            var next = UInt64(Format.containerDataStart)
            while next + diskLength(big) <= size {
                let lsn = try log.append(payload(written.count, length: big))
                if !(lsn.container == 1 && lsn.blockOffset == next) { failures.append("record \(written.count) at \(lsn), expected container 1 offset \(next)") }
                written.append((lsn, big))
                next += diskLength(big)
                if written.count % 64 == 0 { try log.flush() }
            }
            // Then one record whose block would end exactly at 4 GiB (it did; now it goes to the next container).
            let last = Int(size - next) - BlockHeader.size - RecordHeader.size
            written.append((try log.append(payload(written.count, length: last)), last))
            try log.flush()
            try log.close()

            // The first record, and the last few by LSN and by a cursor (reading all 4 GiB back is slow).
            func verify(_ log: LogStore) throws {
                let checked = [0] + Array(max(1, written.count - 3)..<written.count)
                for i in checked {
                    let (lsn, length) = written[i]
                    if try log.read(lsn).data != payload(i, length: length) { failures.append("record \(i) at \(lsn) reads back different") }
                }
                var cursor = try log.records(from: written[checked[1]].0)
                var lsns: [LSN] = []
                while let r = try cursor.next() { lsns.append(r.lsn) }
                if lsns != checked.dropFirst().map({ written[$0].0 }) { failures.append("the cursor read \(lsns)") }
            }
            let again = try LogStore.open(at: dir, io: io)
            try verify(again)
            written.append((try again.append(payload(written.count, length: 1000)), 1000))
            try again.flush()
            try again.close()
            let third = try LogStore.open(at: dir, options: LogOpenOptions(readOnly: false, recovery: .strict), io: io)
            try verify(third)
            try third.close()
            return failures
        }
        #expect(failures.isEmpty, "\(failures.prefix(5))")
    }
}
