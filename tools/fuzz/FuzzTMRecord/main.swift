// libFuzzer target: the transaction manager's record and checkpoint decoder (TMRecord.decode, reached
// through summarizeTMRecord) must map any bytes to a summary or nil — never a trap or an out-of-bounds read.

import TransactionManager

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTMRecord(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = [UInt8](UnsafeRawBufferPointer(start: data, count: size))
    _ = summarizeTMRecord(bytes)
    return 0
}
