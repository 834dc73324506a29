// libFuzzer target (harness T6): BaseRecord.decode must map any bytes to a value or a typed error (I6).
// Each input is decoded as given and once more with its CRC recomputed, so the checks behind the
// checksum are reached too. Built by `make fuzz` with --sanitize=fuzzer; a plain build links it and
// its entry point is never called.

import LogFormat

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzBaseRecord(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    if let r = try? BaseRecord.decode(bytes) { _ = try? r.validate() }
    // With the CRC at 12 recomputed over 0..<128 + payloadLength (bytes 12..<16 counted as zero).
    guard size >= BaseRecord.headerSize else { return 0 }
    var copy = [UInt8](bytes)
    let payloadLength = Int(copy[24]) | Int(copy[25]) << 8 | Int(copy[26]) << 16 | Int(copy[27]) << 24
    let end = BaseRecord.headerSize + payloadLength
    guard end <= copy.count else { return 0 }
    for i in 12..<16 { copy[i] = 0 }
    let crc = CRC32C.checksum(Array(copy[0..<end]))
    for i in 0..<4 { copy[12 + i] = UInt8(truncatingIfNeeded: crc >> (8 * UInt32(i))) }
    if let r = copy.withUnsafeBytes({ try? BaseRecord.decode($0) }) { _ = try? r.validate() }
    return 0
}
