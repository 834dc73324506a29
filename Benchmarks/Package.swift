// swift-tools-version: 6.1
//
// Micro-benchmarks for TxLog with ordo-one/benchmark, kept in a nested package so the main package's
// builds never compile the benchmark dependencies. Run from this directory:
//   swift package benchmark                                  # every suite
//   swift package benchmark --target AppendBenchmarks        # one suite
// Figures and how to read them: ../docs/PERFORMANCE.md.
import PackageDescription

let benchmarkSuites = [
    "AppendBenchmarks", "GroupCommitBenchmarks", "CompressionBenchmarks", "CRCBenchmarks", "ScanBenchmarks", "TransactionBenchmarks",
]

/// Products a suite needs beyond LogStore and BenchFixtures.
let extraDependencies: [String: [Target.Dependency]] = [
    "TransactionBenchmarks": [
        .product(name: "TransactionManager", package: "TxLog"),
        .product(name: "TransactionalKV", package: "TxLog"),
    ],
]

let package = Package(
    name: "TxLogBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "TxLog", path: ".."),
        // The MallocInterposer trait alone: the default RuntimeInterposer trait would pull in a package
        // that is not needed for malloc counts (and is not available everywhere).
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        // Synthetic transaction-log records and throwaway logs shared by the suites.
        .target(
            name: "BenchFixtures",
            dependencies: [
                .product(name: "LogStore", package: "TxLog"), .product(name: "TxLogBenchData", package: "TxLog"),
                .product(name: "Benchmark", package: "benchmark"),
            ]),
    ]
        + benchmarkSuites.map { suite in
            .executableTarget(
                name: suite,
                dependencies: [
                    .product(name: "Benchmark", package: "benchmark"),
                    .product(name: "LogStore", package: "TxLog"),
                    "BenchFixtures",
                ] + (extraDependencies[suite] ?? []),
                path: "Benchmarks/\(suite)",
                plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
            )
        }
)
