// Filling a log to its last byte, for tests of what still works on a full log.

import LogStore

/// Appends records to `filler`, smaller and smaller, until not even an empty one fits: nothing of any
/// size can be appended without a reservation any more. The caller holds off the tail-pinned handlers
/// first (``LogStream/onTailPinned(_:)`` nil, and the log's handlers called ahead disabled), or they would
/// free room as it fills.
public func fillLogToItsLastByte(with filler: LogStream) {
    for size in [3000, 100, 0] {
        while true {
            do { _ = try filler.append([UInt8](repeating: 7, count: size)) } catch { break }
        }
    }
}
