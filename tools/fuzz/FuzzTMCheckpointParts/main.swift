// libFuzzer target: loading a TM checkpoint written in parts (TMCheckpointParts.swift) must map any restart
// record and part records to a checkpoint or a typed error. Input: records, each a little-endian u32
// length and that many bytes (a length past the end takes the rest); the first is the restart record,
// the others are what an LSN the index names reads (record `lsn % count`).

import TransactionManager

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTMCheckpointParts(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeBufferPointer(start: data, count: size)
    var records: [[UInt8]] = []
    var at = 0
    while size - at >= 4 {
        let n = Int(bytes[at]) | Int(bytes[at + 1]) << 8 | Int(bytes[at + 2]) << 16 | Int(bytes[at + 3]) << 24
        at += 4
        let end = n <= size - at ? at + n : size
        records.append(Array(bytes[at..<end]))
        at = end
    }
    guard let restart = records.first else { return 0 }
    _ = try? loadTMCheckpointForFuzzing(restart: restart, records: Array(records.dropFirst()))
    return 0
}
