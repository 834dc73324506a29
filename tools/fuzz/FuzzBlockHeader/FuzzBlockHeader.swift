// libFuzzer target (harness T6): BlockHeader.decode must map any bytes to a value or a typed error (I6);
// a decoded header's checksum check must not read outside the input.

import LogFormat

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzBlockHeader(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    if let h = try? BlockHeader.decode(bytes) { _ = h.verifyChecksum(block: bytes) }
    return 0
}
