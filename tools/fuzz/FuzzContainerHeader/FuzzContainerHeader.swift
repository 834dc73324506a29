// libFuzzer target (harness T6): ContainerHeader.decode must map any bytes to a value or a typed error
// (I6). Each input is decoded as given and once more with its CRC (at 12, over 0..<64) recomputed.

import LogFormat

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzContainerHeader(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    if let h = try? ContainerHeader.decode(bytes) { _ = h.encode() }
    guard size >= ContainerHeader.size else { return 0 }
    var copy = [UInt8](bytes)
    for i in 12..<16 { copy[i] = 0 }
    let crc = CRC32C.checksum(Array(copy[0..<ContainerHeader.size]))
    for i in 0..<4 { copy[12 + i] = UInt8(truncatingIfNeeded: crc >> (8 * UInt32(i))) }
    if let h = copy.withUnsafeBytes({ try? ContainerHeader.decode($0) }) { _ = h.encode() }
    return 0
}
