// `make deps` (run by `make demo`, `make test` and every other target that builds) on the machines a newcomer
// may have, with the tools it calls replaced by fakes on a PATH of their own: Debian as root or with sudo,
// a second run with nothing to do, and no apt at all. Without dpkg it ran apt-get for every package, so on a
// machine without apt `make test` stopped with the shell's "apt-get: not found", also where the libraries
// were installed; now pkg-config decides there, and what cannot be installed is one line saying what to do.

import Foundation
import Testing

@Suite("make deps")
struct MakeDepsTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    /// A directory for the fakes, holding `id` (the user id `uid`) and `grep`, and a file `calls` that every
    /// fake appends its name and arguments to.
    struct FakeTools {
        let dir: String
        init(uid: Int) throws {
            dir = NSTemporaryDirectory() + "/txlog-make-deps-\(UUID().uuidString)"
            try FileManager.default.createDirectory(atPath: dir + "/bin", withIntermediateDirectories: true)
            for tool in ["grep", "env"] {
                try FileManager.default.createSymbolicLink(atPath: dir + "/bin/" + tool, withDestinationPath: try Self.which(tool))
            }
            try add("id", "echo \(uid)", recorded: false)
        }
        static func which(_ tool: String) throws -> String {
            try #require(["/usr/bin/", "/bin/", "/usr/local/bin/"].map { $0 + tool }.first { FileManager.default.isExecutableFile(atPath: $0) })
        }
        /// A fake `name` that records its call (when `recorded`) and runs `script` (sh).
        func add(_ name: String, _ script: String, recorded: Bool = true) throws {
            let path = dir + "/bin/" + name
            let record = recorded ? "echo \"\(name) $*\" >> \(dir)/calls\n" : ""
            // Never through a link to the real tool: a new file in place of whatever is there.
            try? FileManager.default.removeItem(atPath: path)
            try "#!/bin/sh\n\(record)\(script)\n".write(toFile: path, atomically: true, encoding: .utf8)
            chmod(path, 0o755)
        }
        /// dpkg-query saying every package is installed (`true`) or unknown.
        func addDpkgQuery(installed: Bool) throws {
            try add("dpkg-query", installed ? "printf 'install ok installed'" : "exit 1")
        }
        var calls: [String] {
            ((try? String(contentsOfFile: dir + "/calls", encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
        }
        /// `make -s deps` in the source tree with PATH holding only the fakes: its status and stderr.
        func makeDeps() throws -> (status: Int32, stdout: String, stderr: String) {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: try Self.which("make"))
            p.arguments = ["-s", "-C", MakeDepsTests.root, "deps"]
            p.environment = ["PATH": dir + "/bin"]
            let out = Pipe(), err = Pipe()
            p.standardOutput = out
            p.standardError = err
            try p.run()
            let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
            p.waitUntilExit()
            return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
        }
    }

    @Test("without dpkg, libraries that pkg-config finds are enough; none found is one clear line")
    func withoutDpkg() throws {
        let tools = try FakeTools(uid: 0)
        defer { try? FileManager.default.removeItem(atPath: tools.dir) }
        try tools.add("pkg-config", "exit 0")
        let found = try tools.makeDeps()
        #expect(found.status == 0 && found.stderr.isEmpty, "\(found)")
        #expect(tools.calls == ["pkg-config --exists liblz4 zlib"], "\(tools.calls)")

        try tools.add("pkg-config", "exit 1")
        let missing = try tools.makeDeps()
        #expect(missing.status != 0)
        #expect(missing.stderr.hasPrefix("make deps: no dpkg-query") && !missing.stderr.contains("not found"), "\(missing.stderr)")
        #expect(missing.stderr.contains("liblz4-dev zlib1g-dev pkg-config"), "\(missing.stderr)")
    }

    @Test("on Debian: as root apt-get directly, else through sudo; nothing when all is installed")
    func onDebian() throws {
        for uid in [0, 1000] {
            let tools = try FakeTools(uid: uid)
            defer { try? FileManager.default.removeItem(atPath: tools.dir) }
            try tools.addDpkgQuery(installed: false)
            try tools.add("apt-get", "exit 0")
            try tools.add("sudo", "exec env \"$@\"")
            let r = try tools.makeDeps()
            #expect(r.status == 0 && r.stdout == "installing: liblz4-dev zlib1g-dev pkg-config\n", "uid \(uid): \(r)")
            let installs = tools.calls.filter { !$0.hasPrefix("dpkg-query") }
            let install = "apt-get install -y -qq liblz4-dev zlib1g-dev pkg-config"
            let expected = uid == 0
                ? ["apt-get update -qq", install]
                : ["sudo apt-get update -qq", "apt-get update -qq", "sudo DEBIAN_FRONTEND=noninteractive " + install, install]
            #expect(installs == expected, "uid \(uid): \(installs)")

            // A second run: everything installed, nothing run but the queries.
            try tools.addDpkgQuery(installed: true)
            try? FileManager.default.removeItem(atPath: tools.dir + "/calls")
            let again = try tools.makeDeps()
            #expect(again.status == 0 && again.stdout.isEmpty && again.stderr.isEmpty, "\(again)")
            #expect(tools.calls.allSatisfy { $0.hasPrefix("dpkg-query") } && tools.calls.count == 3, "\(tools.calls)")
        }
    }

    @Test("packages missing and no way to install them: one line naming them")
    func cannotInstall() throws {
        // Not root and no sudo.
        let user = try FakeTools(uid: 1000)
        defer { try? FileManager.default.removeItem(atPath: user.dir) }
        try user.addDpkgQuery(installed: false)
        try user.add("apt-get", "exit 0")
        let noSudo = try user.makeDeps()
        #expect(noSudo.status != 0 && noSudo.stderr.hasPrefix("make deps: missing: liblz4-dev zlib1g-dev pkg-config; not root and no sudo"), "\(noSudo)")
        #expect(!user.calls.contains { $0.hasPrefix("apt-get") }, "\(user.calls)")

        // dpkg but no apt-get.
        let root = try FakeTools(uid: 0)
        defer { try? FileManager.default.removeItem(atPath: root.dir) }
        try root.addDpkgQuery(installed: false)
        let noApt = try root.makeDeps()
        #expect(noApt.status != 0 && noApt.stderr.hasPrefix("make deps: missing: liblz4-dev zlib1g-dev pkg-config; no apt-get"), "\(noApt)")

        // apt-get fails.
        try root.add("apt-get", "exit 100")
        let failed = try root.makeDeps()
        #expect(failed.status != 0 && failed.stderr.contains("make deps: could not install liblz4-dev zlib1g-dev pkg-config"), "\(failed)")
    }
}
