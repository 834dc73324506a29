// Which of this process's file descriptors are open on files under a directory: for tests that a log,
// a TM or a store closes every file it opened. Only the given directory is looked at, so tests running
// in parallel in the same process do not disturb the count.

import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The paths of this process's open descriptors that lie under `directory` (from /proc/self/fd).
public func openDescriptors(under directory: String) -> [String] {
    let root = URL(fileURLWithPath: directory).resolvingSymlinksInPath().path + "/"
    guard let fds = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd") else { return [] }
    var out: [String] = []
    for fd in fds {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlink("/proc/self/fd/" + fd, &buffer, buffer.count - 1)
        guard n > 0 else { continue }
        let target = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        if target.hasPrefix(root) { out.append(target) }
    }
    return out.sorted()
}
