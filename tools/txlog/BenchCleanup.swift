// What `txlog bench` leaves behind when SIGINT or SIGTERM ends it: nothing. The bench directory
// registers what it made (its temporary root, or the bench logs it made in a --dir given), and a watcher
// thread removes them when a signal arrives, then ends the process by that signal. Without it, Ctrl-C
// left the temporary directory (hundreds of MiB of zero-filled containers) in /tmp: the directory's deinit
// never runs when a signal kills the process.

import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The write end of the pipe the handler writes the signal's number to (-1 until installed).
private let benchSignalFD = Atomic<Int32>(-1)
/// Set once a signal's cleanup has begun: the process is to die by that signal, not exit.
private let benchDying = Atomic<Bool>(false)

enum BenchCleanup {
    /// Paths to remove on a signal, each with how many registrations hold it.
    private static let paths = Mutex<[String: Int]>([:])

    /// Removes `path` (a directory or file, recursively) if a signal ends the process before `unregister`.
    static func register(_ path: String) {
        installOnce
        paths.withLock { $0[path, default: 0] += 1 }
    }

    static func unregister(_ path: String) {
        paths.withLock { table in
            guard let n = table[path] else { return }
            table[path] = n > 1 ? n - 1 : nil
        }
    }

    /// Installs the SIGINT and SIGTERM handlers and starts the watcher thread, once per process.
    private static let installOnce: Void = {
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { return }
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        // Non-blocking write end: a handler never waits on a full pipe.
        _ = fcntl(fds[1], F_SETFL, fcntl(fds[1], F_GETFL) | O_NONBLOCK)
        benchSignalFD.store(fds[1], ordering: .releasing)
        let readFD = fds[0]
        let watcher = Thread {
            // This thread takes the signals even when every other one blocks them (a mask inherited from
            // the parent, or the pool's threads): the handler then runs here and the death below is sure.
            var signals = sigset_t()
            sigemptyset(&signals)
            sigaddset(&signals, SIGINT)
            sigaddset(&signals, SIGTERM)
            pthread_sigmask(SIG_UNBLOCK, &signals, nil)
            var byte: UInt8 = 0
            while true {
                let n = read(readFD, &byte, 1)
                if n == 1 { break }
                if n < 0, errno == EINTR { continue }
                return  // the pipe is gone: nothing to watch
            }
            removeRegisteredAndDie(signal: Int32(byte))
        }
        watcher.stackSize = 1 << 20
        watcher.start()
        for sig in [SIGINT, SIGTERM] {
            // Only async-signal-safe calls here: a write of one byte; the watcher does the rest.
            signal(sig) { s in
                let saved = errno
                var byte = UInt8(truncatingIfNeeded: s)
                let fd = benchSignalFD.load(ordering: .acquiring)
                if fd >= 0 { _ = write(fd, &byte, 1) }
                errno = saved
            }
        }
    }()

    /// Waits for ever once a signal's cleanup has begun, so the process dies by the signal rather than exit:
    /// the cleanup removes the bench's files while the bench still runs, and the error that gives it (a
    /// container it can no longer create, say) can end the process with an exit status first. (A test run
    /// under load once ended so; this is the one way found that can do it, not reproduced since.) `main`
    /// calls it before it exits, on every path.
    static func parkIfDying() {
        guard benchDying.load(ordering: .acquiring) else { return }
        while true { pause() }
    }

    /// Removes every registered path, then ends the process by `signal` with its default action (the
    /// shell sees the signal, e.g. exit status 130 for SIGINT).
    private static func removeRegisteredAndDie(signal sig: Int32) -> Never {
        benchDying.store(true, ordering: .releasing)
        let targets = paths.withLock { Array($0.keys) }
        for path in targets.sorted(by: { $0.count > $1.count }) {
            // A bench thread may create a file inside while the tree is removed: try again a few times.
            for _ in 0..<5 where FileManager.default.fileExists(atPath: path) {
                try? FileManager.default.removeItem(atPath: path)
            }
        }
        signal(sig, SIG_DFL)
        // To this thread, which does not block it: the default action ends the process.
        raise(sig)
        _exit(128 + sig)
    }
}
