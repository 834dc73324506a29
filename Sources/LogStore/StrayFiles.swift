// Files in a log directory that the base file does not name: docs/format/README.md ("The files of a
// log", rule for other files). Open never reads, moves or deletes them; `txlog verify` lists them.

import LogFormat

/// A file in the log directory that the base file does not name.
public struct StrayFile: Sendable, Equatable, CustomStringConvertible {
    /// What the file's name says it is.
    public enum Kind: String, Sendable {
        /// Named like a container (the default `container-` prefix or the policy's): an orphan of an
        /// interrupted `addContainer` or `removeContainer`, or a file copied in. Never read by open; a
        /// container created under that name later replaces it.
        case orphanContainer = "orphan-container"
        /// `txlog.base.tmp`: left by an interrupted `create`; the next `create` in this directory replaces it.
        case baseTemporary = "base-temporary"
        /// Any other name: not the log's. Left alone.
        case other
    }

    /// The file's name in the log directory.
    public var name: String
    /// What the file's name says it is.
    public var kind: Kind
    /// What the file holds, as far as the log can tell: for an orphan container, its header's identity.
    public var detail: String

    /// A stray file `name` of `kind`, with what it holds.
    public init(name: String, kind: Kind, detail: String) {
        self.name = name
        self.kind = kind
        self.detail = detail
    }

    public var description: String { "\(name): \(kind.rawValue), \(detail)" }
}

extension LogStore {
    /// Every name in the log directory other than `txlog.base` and the containers the base file names, by
    /// name. Read-only; a container added by a live writer after this log was opened shows up as an orphan.
    ///
    /// - Throws: `closed`, or `io`/`notFound` if the directory cannot be listed.
    public func strayFiles() throws -> [StrayFile] {
        try core.checkOpen()
        let (named, prefixes) = core.lock.withLock { () -> (Set<String>, [String]) in
            let names = core.state.containers.values.map { String($0.path.dropFirst(core.directory.count + 1)) }
            return (Set(names + [Format.baseFileName]), Array(Set([Format.defaultContainerPrefix, core.state.policy.containerPrefix])))
        }
        var stray: [StrayFile] = []
        for name in try core.io.listDirectory(core.directory).sorted() where !named.contains(name) {
            if name == Format.baseFileName + ".tmp" {
                stray.append(StrayFile(name: name, kind: .baseTemporary, detail: "left by an interrupted create, ignored"))
            } else if prefixes.contains(where: { name.hasPrefix($0) }) {
                stray.append(StrayFile(name: name, kind: .orphanContainer, detail: describeContainerFile(core.directory + "/" + name) + ", ignored"))
            } else {
                stray.append(StrayFile(name: name, kind: .other, detail: "not a file of the log, ignored"))
            }
        }
        return stray
    }

    /// Whose container the file's header says it is.
    private func describeContainerFile(_ path: String) -> String {
        let io = core.io
        guard let fd = try? io.open(path, mode: .readOnly) else { return "cannot be opened" }
        defer { io.close(fd) }
        var bytes = [UInt8](repeating: 0, count: ContainerHeader.size)
        guard let n = try? bytes.withUnsafeMutableBytes({ try io.readFully(fd, into: $0, at: 0) }), n == ContainerHeader.size,
            let h = try? bytes.withUnsafeBytes({ try ContainerHeader.decode($0) })
        else { return "no valid container header" }
        guard h.logID == core.logID else { return "a container of another log (\(h.logID))" }
        let listed = core.lock.withLock { core.state.containers[h.physicalID] != nil }
        return "header of this log's container \(h.physicalID)" + (listed ? " (a copy of a listed container)" : " (not in the base file)")
    }
}
