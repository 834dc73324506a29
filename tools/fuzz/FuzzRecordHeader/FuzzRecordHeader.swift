// libFuzzer target (harness T6): RecordHeader.decode, reached through DecodedBlock.parseRecords, must
// map any payload to records or a typed error (I6). Input: a little-endian u16 record count (taken
// modulo 513: 0...512 records, the format's limit is 512), then the raw (uncompressed) block payload.

import LogFormat

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRecordHeader(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size >= 2 else { return 0 }
    let count = (Int(data[0]) | Int(data[1]) << 8) % 513
    let payload = [UInt8](UnsafeRawBufferPointer(start: data + 2, count: size - 2))
    if let slots = try? DecodedBlock.parseRecords(payload, count: count) {
        let block = DecodedBlock(
            header: BlockHeader(
                codecID: 0, codecLevel: 0, recordCount: UInt16(slots.count), storedLength: UInt32(payload.count),
                rawLength: UInt32(payload.count), logicalContainer: 5, blockOffset: 4096, epoch: 3, previousBlockCRC: 0,
                durableHint: .null, logSalt: 0, streamMask: 0),
            payload: payload, slots: slots)
        for k in slots.indices { _ = block.data(at: k) }
    }
    return 0
}
