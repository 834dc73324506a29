// libFuzzer target (harness T6): DecodedBlock.decode (header, identity, CRC, decompression, records)
// must map any bytes to a block or `absent`/`damaged` (I6). The identity and raw-length bound are fixed
// to those of the block fixtures (Tests/LogFormatTests/TestSupport.swift, `Sample`). Each input is decoded
// as given and once more with its CRC recomputed (bytes 4..<8 counted as zero over 0..<64 + storedLength),
// so decompression and record parsing are reached too.

import LogFormat

let identity = BlockIdentity(logSalt: 0x0123_4567_89AB_CDEF, logicalContainer: 5, blockOffset: 4096, maxEpoch: 3)
/// Generous (1 MiB) but bounded: what a log with 1 MiB records would pass.
let maxRawLength = 1 << 20

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzDecodedBlock(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    if case .success(let b) = DecodedBlock.decode(bytes, expecting: identity, maxRawLength: maxRawLength) {
        for k in b.slots.indices { _ = b.data(at: k) }
    }
    guard size >= BlockHeader.size else { return 0 }
    var copy = [UInt8](bytes)
    let stored = Int(copy[16]) | Int(copy[17]) << 8 | Int(copy[18]) << 16 | Int(copy[19]) << 24
    let end = BlockHeader.size + stored
    guard end <= copy.count else { return 0 }
    for i in 4..<8 { copy[i] = 0 }
    let crc = CRC32C.checksum(Array(copy[0..<end]))
    for i in 0..<4 { copy[4 + i] = UInt8(truncatingIfNeeded: crc >> (8 * UInt32(i))) }
    let result = copy.withUnsafeBytes { DecodedBlock.decode($0, expecting: identity, maxRawLength: maxRawLength) }
    if case .success(let b) = result {
        for k in b.slots.indices { _ = b.data(at: k) }
    }
    return 0
}
