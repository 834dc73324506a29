// swift-tools-version: 6.0
//
// TxLog: a CLFS-style multiplexed transaction log for Linux.
// Module map and dependency direction: docs/ARCHITECTURE.md.
import PackageDescription

let package = Package(
    name: "TxLog",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "LogStore", targets: ["LogStore"]),
        .library(name: "TransactionManager", targets: ["TransactionManager"]),
        .library(name: "TransactionalKV", targets: ["TransactionalKV"]),
        .executable(name: "txlog", targets: ["txlog"]),
        // Synthetic transaction-log records for benchmarks (txlog bench and the Benchmarks package).
        .library(name: "TxLogBenchData", targets: ["TxLogBenchData"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        // System libraries (Debian: liblz4-dev, zlib1g-dev). `make deps` installs them.
        .systemLibrary(name: "CLZ4", pkgConfig: "liblz4", providers: [.apt(["liblz4-dev"]), .brew(["lz4"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        // CRC32C with an SSE4.2 path chosen at run time and a portable fallback.
        .target(name: "CCRC32C"),
        // futex wait / wake-all and acquire-release loads and stores, for the log's flush gate.
        .target(name: "CFutex"),
        // Pure bytes <-> values: LSN, on-disk structures, codecs, checksums, errors. No file I/O.
        .target(name: "LogFormat", dependencies: ["CCRC32C", "CLZ4", "CZlib"]),
        // The log itself: file-I/O seam, containers, base file, append, group commit, read, recovery.
        .target(name: "LogStore", dependencies: ["LogFormat", "CFutex"]),
        // The KTM layer: transactions, resource managers, two-phase commit, recovery, Online/Terminate.
        .target(name: "TransactionManager", dependencies: ["LogStore"]),
        // A durable, transactional, ordered key-value store: a resource manager on TransactionManager.
        .target(name: "TransactionalKV", dependencies: ["TransactionManager", "LogStore"]),
        // Synthetic records and the benchmark resource manager, shared by txlog bench and Benchmarks/.
        .target(name: "TxLogBenchData", dependencies: ["TransactionManager", "LogStore"]),
        .executableTarget(
            name: "txlog",
            dependencies: ["LogStore", "TransactionManager", "TransactionalKV", "TxLogBenchData", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "tools/txlog"
        ),
        .testTarget(
            name: "LogFormatTests",
            dependencies: ["LogFormat", "TxLogTestSupport"],
            resources: [.copy("Fixtures")]
        ),
        // Fixtures/ (the golden-output tests' log and expected outputs) is read from the source tree.
        .testTarget(name: "LogStoreTests", dependencies: ["LogStore", "LogFormat", "TxLogTestSupport"], exclude: ["Fixtures"]),
        // Helpers shared by test targets: running txlog children, SplitMix64, LogError expectations.
        .target(name: "TxLogTestSupport", dependencies: ["LogFormat", "LogStore"], path: "Tests/TxLogTestSupport"),
        .testTarget(
            name: "TransactionalKVTests",
            dependencies: ["TransactionalKV", "TransactionManager", "LogStore", "TxLogTestSupport"],
            resources: [.copy("Fixtures")]
        ),
        .testTarget(
            name: "TransactionManagerTests",
            dependencies: ["TransactionManager", "LogStore", "TxLogTestSupport"],
            resources: [.copy("Fixtures")]
        ),
    ] + fuzzTargets
)

// libFuzzer entry points (harness T6), one per on-disk parser: five in LogFormat, the TM's records and its
// checkpoints in parts, the KV store's records and snapshots. `make fuzz` builds them with
// `--sanitize=fuzzer --sanitize=address -Xswiftc -sanitize=fuzzer,address` (swiftc keeps only its last
// `-sanitize=`: without the combined flag the Swift code had no coverage counters); in a plain build they
// link and do nothing.
var fuzzTargets: [Target] {
    ["FuzzBaseRecord", "FuzzContainerHeader", "FuzzBlockHeader", "FuzzDecodedBlock", "FuzzRecordHeader"].map {
        .executableTarget(name: $0, dependencies: ["LogFormat"], path: "tools/fuzz/\($0)")
    } + [
        .executableTarget(name: "FuzzTMRecord", dependencies: ["TransactionManager"], path: "tools/fuzz/FuzzTMRecord"),
        .executableTarget(name: "FuzzTMCheckpointParts", dependencies: ["TransactionManager"], path: "tools/fuzz/FuzzTMCheckpointParts"),
        .executableTarget(name: "FuzzKVRecord", dependencies: ["TransactionalKV"], path: "tools/fuzz/FuzzKVRecord"),
        .executableTarget(name: "FuzzKVSnapshot", dependencies: ["TransactionalKV", "LogStore"], path: "tools/fuzz/FuzzKVSnapshot"),
    ]
}
