// libFuzzer target: snapshot validation must map any file contents to entries or a typed error. The
// CRC32C trailer is recomputed over the input first, so the fuzzer reaches the parser behind it.

import LogStore
import TransactionalKV

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzKVSnapshot(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    var bytes = [UInt8](UnsafeRawBufferPointer(start: data, count: size))
    _ = try? validateKVSnapshot(bytes)
    if bytes.count >= 4 {
        let crc = bytes.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[0..<(bytes.count - 4)])) }
        for i in 0..<4 { bytes[bytes.count - 4 + i] = UInt8(truncatingIfNeeded: crc >> (8 * UInt32(i))) }
        _ = try? validateKVSnapshot(bytes)
    }
    return 0
}
