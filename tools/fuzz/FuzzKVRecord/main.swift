// libFuzzer target: the key-value store's stream-record decoder must map any bytes to a record or nil.

import TransactionalKV

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzKVRecord(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    _ = describeKVRecord([UInt8](UnsafeRawBufferPointer(start: data, count: size)))
    return 0
}
