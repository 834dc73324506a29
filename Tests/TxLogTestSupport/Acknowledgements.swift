// The acknowledgements of a crash loop's child: only the lines it completed before the kill count.

import Foundation

/// Appends the newline-terminated lines of `output` to the file at `path` (created if missing): a last
/// line the kill cut short was never acknowledged. Returns how many lines it appended.
@discardableResult
public func appendCompleteLines(of output: String, to path: String) throws -> Int {
    guard let cut = output.lastIndex(of: "\n") else { return 0 }
    let complete = String(output[...cut])
    if let h = FileHandle(forWritingAtPath: path) {
        defer { try? h.close() }
        try h.seekToEnd()
        try h.write(contentsOf: Data(complete.utf8))
    } else {
        try complete.write(toFile: path, atomically: true, encoding: .utf8)
    }
    return complete.split(separator: "\n").count
}
