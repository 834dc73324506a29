// Helpers shared by IntegrationTests, BoundaryTests, ConcurrencyTests and CrashTests: temporary log
// directories, deterministic payloads, a thread runner, a directory snapshot (a process-crash image)
// and the stress-record oracle used by `txlog stress`.

import Foundation
import LogStore
@_exported import TxLogTestSupport

#if canImport(Glibc)
import Glibc
#endif

enum LogTestKit {
    // MARK: Directories

    /// A fresh, not yet existing path under the temporary directory.
    static func temporaryPath(_ tag: String) -> String {
        let base = NSTemporaryDirectory().hasSuffix("/") ? NSTemporaryDirectory() : NSTemporaryDirectory() + "/"
        return base + "txlog-\(tag)-\(UUID().uuidString)"
    }

    static func remove(_ path: String) {
        try? FileManager.default.removeItem(atPath: path)
    }

    /// The container files of a log directory, sorted by name.
    static func containerFiles(in directory: String) -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.filter { $0.hasPrefix(Format.defaultContainerPrefix) }.sorted()
    }

    /// Copies every file of `directory` into a new directory: while the log's writer is idle this is the
    /// image a process crash (SIGKILL) would leave, since completed writes are in the page cache.
    static func snapshot(_ directory: String, to copy: String) throws {
        let fm = FileManager.default
        try fm.createDirectory(atPath: copy, withIntermediateDirectories: true)
        for name in try fm.contentsOfDirectory(atPath: directory) {
            let data = try Data(contentsOf: URL(fileURLWithPath: directory + "/" + name))
            try data.write(to: URL(fileURLWithPath: copy + "/" + name))
        }
    }

    static func options(
        containerSize: UInt64 = 1 << 20, containerCount: Int = 2, blockSize: Int = 8192, codec: Codec = .lz4
    ) -> LogCreateOptions {
        LogCreateOptions(containerSize: containerSize, containerCount: containerCount, blockSize: blockSize, codec: codec)
    }

    // MARK: Payloads

    /// Deterministic, incompressible bytes for record `index`.
    static func randomPayload(_ index: Int, length: Int, salt: UInt64 = 0) -> [UInt8] {
        var x = UInt64(truncatingIfNeeded: index) &* 0x9E37_79B9_7F4A_7C15 ^ salt ^ 0xD1B5_4A32_D192_ED03
        var out = [UInt8](repeating: 0, count: length)
        for i in 0..<length {
            x ^= x << 13
            x ^= x >> 7
            x ^= x << 17
            out[i] = UInt8(truncatingIfNeeded: x >> 24)
        }
        return out
    }

    /// Deterministic, highly compressible bytes for record `index`.
    static func textPayload(_ index: Int, length: Int) -> [UInt8] {
        let unit = Array("record \(index) of the integration suite; ".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(length)
        while out.count < length { out.append(unit[out.count % unit.count]) }
        return out
    }

    /// A payload that names its writer and sequence and checks itself (length >= 16).
    static func taggedPayload(writer: Int, sequence: Int, length: Int) -> [UInt8] {
        let n = max(length, 16)
        var out = randomPayload(writer &* 1_000_003 &+ sequence, length: n, salt: 0xABCD)
        out.withUnsafeMutableBytes { b in
            b.storeBytes(of: UInt32(writer).littleEndian, toByteOffset: 0, as: UInt32.self)
            b.storeBytes(of: UInt32(sequence).littleEndian, toByteOffset: 4, as: UInt32.self)
            b.storeBytes(of: UInt32(n).littleEndian, toByteOffset: 8, as: UInt32.self)
        }
        let crc = CRC32C.checksum(Array(out[16...]))
        out.withUnsafeMutableBytes { b in b.storeBytes(of: crc.littleEndian, toByteOffset: 12, as: UInt32.self) }
        return out
    }

    /// (writer, sequence) if `bytes` is exactly what `taggedPayload` produces.
    static func parseTagged(_ bytes: [UInt8]) -> (writer: Int, sequence: Int)? {
        guard bytes.count >= 16 else { return nil }
        let w = bytes.withUnsafeBytes { Int(UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: 0, as: UInt32.self))) }
        let s = bytes.withUnsafeBytes { Int(UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: 4, as: UInt32.self))) }
        return taggedPayload(writer: w, sequence: s, length: bytes.count) == bytes ? (w, s) : nil
    }

    // MARK: Errors

    /// The code of the `LogError` thrown by `body`, or nil if it returned or threw something else.
    static func errorCode(_ body: () throws -> Void) -> LogError.Code? {
        do {
            try body()
            return nil
        } catch let e as LogError {
            return e.code
        } catch {
            return nil
        }
    }

    // MARK: Reading everything

    /// Every record from the base of the log, in cursor order.
    static func allRecords(_ log: LogStore) throws -> [LogRecord] {
        var cursor = try log.records()
        var out: [LogRecord] = []
        while let r = try cursor.next() { out.append(r) }
        return out
    }

    // MARK: Threads

    /// Runs `body(i)` for i in 0..<count, each on its own Foundation thread, and suspends (without
    /// blocking a cooperative thread) until all have finished.
    static func onThreads(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) async {
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            let group = DispatchGroup()
            for i in 0..<count {
                group.enter()
                let thread = Thread {
                    body(i)
                    group.leave()
                }
                thread.stackSize = 1 << 20
                thread.start()
            }
            group.notify(queue: .global()) { done.resume() }
        }
    }
}

/// A value shared between threads, guarded by a lock.
final class LockedBox<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value

    init(_ value: Value) { self.value = value }

    func withLock<T>(_ body: (inout Value) throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }

    var snapshot: Value { withLock { $0 } }
}

/// The record format of `txlog stress` (tools/txlog/StressPayload.swift), re-implemented here as the
/// oracle: writer id, sequence number and length determine every byte.
enum StressOracle {
    static let headerSize = 20

    static func make(writer: UInt32, sequence: UInt64, length: Int) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: max(length, headerSize))
        bytes.withUnsafeMutableBytes { b in
            b.storeBytes(of: writer.littleEndian, toByteOffset: 0, as: UInt32.self)
            b.storeBytes(of: sequence.littleEndian, toByteOffset: 4, as: UInt64.self)
            b.storeBytes(of: UInt32(b.count).littleEndian, toByteOffset: 12, as: UInt32.self)
            var x = UInt64(writer) &* 0x9E37_79B9_7F4A_7C15 ^ sequence
            for i in headerSize..<b.count {
                x = x &* 6364136223846793005 &+ 1442695040888963407
                b[i] = UInt8(truncatingIfNeeded: x >> 56)
            }
            let crc = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: b[headerSize...]))
            b.storeBytes(of: crc.littleEndian, toByteOffset: 16, as: UInt32.self)
        }
        return bytes
    }

    static func parse(_ bytes: [UInt8]) -> (writer: UInt32, sequence: UInt64)? {
        guard bytes.count >= headerSize else { return nil }
        let writer = bytes.withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: 0, as: UInt32.self)) }
        let sequence = bytes.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: 4, as: UInt64.self)) }
        return make(writer: writer, sequence: sequence, length: bytes.count) == bytes ? (writer, sequence) : nil
    }
}
