// Running the built `txlog` executable from tests: locating it, running it to completion, or killing it
// with SIGKILL at a chosen moment. Shared by the crash tests of every test target.

import Foundation

#if canImport(Glibc)
import Glibc
#endif

public enum TxlogProcess {
    public enum Failure: Error, CustomStringConvertible {
        case notFound(String)
        case hung(arguments: [String], seconds: Double, stderr: String)
        public var description: String {
            switch self {
            case .notFound(let p): "txlog binary not found at \(p): build it with `swift build --build-tests` (it lands beside the test bundle) or set TXLOG_BIN"
            case .hung(let a, let s, let e): "txlog \(a.joined(separator: " ")) still ran after \(Int(s)) s and was killed; stderr: \(e.suffix(2000))"
            }
        }
    }

    /// How long a child may run before it is taken for hung: killed, and reported as a failure rather than
    /// a test run that never ends.
    public static let hangSeconds: Double = 600

    /// $TXLOG_BIN, or `txlog` beside the test bundle (`swift build --build-tests` builds both into the
    /// same directory).
    public static func binary() throws -> String {
        guard FileManager.default.isExecutableFile(atPath: path) else { throw Failure.notFound(path) }
        return path
    }

    /// Where the txlog executable should be ($TXLOG_BIN, or beside the test bundle), without checking.
    public static var path: String {
        let env = ProcessInfo.processInfo.environment["TXLOG_BIN"] ?? ""
        return env.isEmpty
            ? URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent().appendingPathComponent("txlog").path
            : env
    }

    /// How a child ended.
    public struct Ended: Sendable {
        /// The exit status, or the signal number when `signaled`.
        public var status: Int32
        /// Ended by SIGKILL.
        public var killed: Bool
        /// Ended by a signal (`status` is its number).
        public var signaled: Bool
        public var stdout: String
        public var stderr: String

        public init(status: Int32, killed: Bool, signaled: Bool? = nil, stdout: String, stderr: String) {
            self.status = status
            self.killed = killed
            self.signaled = signaled ?? killed
            self.stdout = stdout
            self.stderr = stderr
        }
    }

    /// Runs txlog with `arguments`, stdout and stderr into files under `scratch`; sends SIGKILL after
    /// `killAfter` seconds if it is still running (nil: wait for it to exit). A child still running
    /// `hangAfter` seconds later is killed and reported as `Failure.hung`, so a hung child fails its test
    /// instead of stalling the whole run. `currentDirectory` is the
    /// child's working directory (nil: this process's), for relative paths in the arguments.
    public static func run(
        _ arguments: [String], scratch: String, killAfter: Double? = nil, currentDirectory: String? = nil,
        hangAfter: Double = hangSeconds
    ) async throws -> Ended {
        let out = scratch + "/stdout-\(UUID().uuidString)"
        let err = out + "-err"
        _ = FileManager.default.createFile(atPath: out, contents: nil)
        _ = FileManager.default.createFile(atPath: err, contents: nil)
        let outHandle = try FileHandle(forWritingTo: URL(fileURLWithPath: out))
        let errHandle = try FileHandle(forWritingTo: URL(fileURLWithPath: err))
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try binary())
        p.arguments = arguments
        if let currentDirectory { p.currentDirectoryURL = URL(fileURLWithPath: currentDirectory) }
        p.standardOutput = outHandle
        p.standardError = errHandle
        p.standardInput = FileHandle.nullDevice
        try p.run()
        if let killAfter {
            _ = await KillTimer(p, afterMilliseconds: Int(killAfter * 1000)).wait()
        }
        let deadline = Date().addingTimeInterval(hangAfter)
        var hung = false
        while p.isRunning {
            if Date() > deadline, !hung {
                hung = true
                kill(p.processIdentifier, SIGKILL)
            }
            // If Foundation never notices the end (isRunning stuck at true), stop waiting anyway.
            if hung, Date() > deadline.addingTimeInterval(10) { break }
            try await Task.sleep(for: .milliseconds(5))
        }
        try? outHandle.close()
        try? errHandle.close()
        if hung {
            let stderr = (try? String(contentsOfFile: err, encoding: .utf8)) ?? ""
            try? FileManager.default.removeItem(atPath: out)
            try? FileManager.default.removeItem(atPath: err)
            throw Failure.hung(arguments: arguments, seconds: hangAfter, stderr: stderr)
        }
        defer {
            try? FileManager.default.removeItem(atPath: out)
            try? FileManager.default.removeItem(atPath: err)
        }
        let signaled = p.terminationReason == .uncaughtSignal
        return Ended(
            status: p.terminationStatus, killed: signaled && p.terminationStatus == SIGKILL, signaled: signaled,
            stdout: (try? String(contentsOfFile: out, encoding: .utf8)) ?? "", stderr: (try? String(contentsOfFile: err, encoding: .utf8)) ?? "")
    }
}
