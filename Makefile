# TxLog. `make demo` and `make test` are the two commands a newcomer needs; both install missing
# system packages first (Debian: liblz4-dev, zlib1g-dev, pkg-config).

SWIFT ?= swift
APT_PACKAGES := liblz4-dev zlib1g-dev pkg-config
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: deps build demo test test-long bench compare malloc-count fuzz fuzz-smoke killloop tsan asan docs-check clean

# A package counts as present only when dpkg says "ok installed": `dpkg -s` also succeeds for one that was
# removed but not purged (its configuration files kept), whose headers are gone. Without dpkg (not Debian)
# the libraries found by pkg-config will do; otherwise, and when they cannot be installed (no apt-get, not
# root and no sudo), it stops with one line saying what to install instead of a "not found" from the shell.
deps:
	@if ! command -v dpkg-query >/dev/null 2>&1; then \
		pkg-config --exists liblz4 zlib 2>/dev/null && exit 0; \
		echo "make deps: no dpkg-query (not Debian?) and pkg-config finds no liblz4 and zlib: install the lz4 and zlib development files and pkg-config ($(APT_PACKAGES) on Debian)" >&2; exit 1; \
	fi; \
	missing=""; for p in $(APT_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed$$' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		if ! command -v apt-get >/dev/null 2>&1; then \
			echo "make deps: missing:$$missing; no apt-get here to install them: install them yourself" >&2; exit 1; \
		fi; \
		if [ -n "$(SUDO)" ] && ! command -v $(SUDO) >/dev/null 2>&1; then \
			echo "make deps: missing:$$missing; not root and no sudo: as root, run apt-get install$$missing" >&2; exit 1; \
		fi; \
		echo "installing:$$missing"; \
		$(SUDO) apt-get update -qq && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing \
			|| { echo "make deps: could not install$$missing (apt-get failed, above)" >&2; exit 1; }; \
	fi

build: deps
	$(SWIFT) build

demo: deps
	$(SWIFT) build -c release --product txlog
	./.build/release/txlog demo demo-log

test: deps
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build

# Opt-in long runs: many more crash iterations.
test-long: deps
	$(SWIFT) build --build-tests
	TXLOG_LONG_TESTS=1 $(SWIFT) test --skip-build

# Heap allocations per record on the hot paths (tools/malloc-count/README.md): a release txlog and an
# LD_PRELOAD shim counting malloc and friends; each line is (count of a longer run - count of a shorter run)
# / (records of the longer - of the shorter), so the setup drops out.
malloc-count: deps
	$(SWIFT) build -c release --product txlog
	mkdir -p .build/malloc-count
	$(CC) -O2 -shared -fPIC -o .build/malloc-count/mcount.so tools/malloc-count/mcount.c -ldl
	@set -e; P="tools/malloc-count/per-record.py ./.build/release/txlog .build/malloc-count/mcount.so"; \
	d=$$(mktemp -d); trap 'rm -rf "$$d"' EXIT; \
	$$P append 1 3 --dir $$d --sizes 128 --codecs none,lz4 --container-mib 512 --containers 4; \
	for w in 1 64; do for api in sync async; do $$P commit 1 3 --dir $$d --writers $$w --api $$api; done; done; \
	for c in 1 64; do for m in 1pc 2pc; do $$P 2pc 1 3 --dir $$d --clients $$c --modes $$m; done; done

# Opt-in: libFuzzer on every on-disk parser (tools/fuzz: LogFormat, TM records and checkpoints in parts, KV records and snapshots), FUZZ_SECONDS each, release + ASan, on a
# copy of the seed corpus in .build-fuzz (new inputs accumulate there; crashes go to .build-fuzz/artifacts).
FUZZ_SECONDS ?= 60
# swiftc keeps only the last `-sanitize=` it is given, and SwiftPM passes `--sanitize=fuzzer --sanitize=address`
# as two: the Swift code got ASan but no coverage counters (only the C CRC was instrumented), so libFuzzer ran
# blind. `-sanitize=fuzzer,address` after them gives the Swift code both; SwiftPM's flags still link both runtimes.
FUZZ_BUILD := $(SWIFT) build -c release --sanitize=fuzzer --sanitize=address -Xswiftc -sanitize=fuzzer,address --scratch-path .build-fuzz
FUZZ_TARGETS := FuzzBaseRecord FuzzContainerHeader FuzzBlockHeader FuzzDecodedBlock FuzzRecordHeader FuzzTMRecord FuzzTMCheckpointParts FuzzKVRecord FuzzKVSnapshot

fuzz: deps
	@set -e; for t in $(FUZZ_TARGETS); do \
		$(FUZZ_BUILD) --product $$t; \
	done
	@set -e; for t in $(FUZZ_TARGETS); do \
		mkdir -p .build-fuzz/corpus/$$t .build-fuzz/artifacts/$$t; \
		cp tools/fuzz/corpus/$$t/* .build-fuzz/corpus/$$t/; \
		echo "== $$t ($(FUZZ_SECONDS) s)"; \
		SWIFT_BACKTRACE=enable=no .build-fuzz/release/$$t -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
			-artifact_prefix=.build-fuzz/artifacts/$$t/ .build-fuzz/corpus/$$t; \
	done

# CI tier of the fuzzers (.ci/run, after `make test`): every target above built the same way, then run
# FUZZ_SMOKE_SECONDS each on a fresh copy of its seed corpus (.build-fuzz/smoke/<target>). Any crash, leak,
# timeout or out-of-memory report fails it; the input is kept in .build-fuzz/smoke/<target>/artifacts (copy
# it into tools/fuzz/corpus/<target>/ and FuzzRegressionTests replays it on every test run).
FUZZ_SMOKE_SECONDS ?= 5
# Every target links all of LogFormat (thousands of coverage counters); a blind build has under 100.
FUZZ_MIN_COUNTERS ?= 1000

fuzz-smoke: deps
	@set -e; for t in $(FUZZ_TARGETS); do \
		$(FUZZ_BUILD) --product $$t; \
	done
	@set -e; for t in $(FUZZ_TARGETS); do \
		d=.build-fuzz/smoke/$$t; rm -rf $$d; mkdir -p $$d/corpus $$d/artifacts; cp tools/fuzz/corpus/$$t/* $$d/corpus/; \
		if SWIFT_BACKTRACE=enable=no .build-fuzz/release/$$t -max_total_time=$(FUZZ_SMOKE_SECONDS) -print_final_stats=1 \
			-artifact_prefix=$$d/artifacts/ $$d/corpus >$$d/log 2>&1; then \
			echo "fuzz-smoke: $$t ok, $$(sed -n 's/^stat::number_of_executed_units: *//p' $$d/log) executions in $(FUZZ_SMOKE_SECONDS) s"; \
		else \
			tail -n 40 $$d/log; echo "fuzz-smoke: $$t FAILED; input kept in $$d/artifacts"; exit 1; \
		fi; \
		counters=$$(sed -n 's/^INFO: Loaded [0-9]* modules *(\([0-9]*\) inline 8-bit counters.*/\1/p' $$d/log | head -n 1); \
		if [ "$${counters:-0}" -lt $(FUZZ_MIN_COUNTERS) ]; then \
			echo "fuzz-smoke: $$t has $${counters:-no} coverage counters (fewer than $(FUZZ_MIN_COUNTERS)): the Swift code is not instrumented, the fuzzer runs blind"; exit 1; \
		fi; \
	done

# Opt-in kill loops (not part of `make test`): tools/killloop.sh SIGKILLs `txlog workload run` (the
# key-value bank), `txlog workload churn` (the key-value stores' puts, deletes and large write sets, checked
# exactly) and `txlog stress run` (the raw log) after random delays, ITERATIONS times each, and runs
# the matching check after every kill; it stops at the first failure and keeps that directory.
ITERATIONS ?= 50

killloop: deps
	$(SWIFT) build -c release --product txlog
	TXLOG=.build/release/txlog ITERATIONS=$(ITERATIONS) bash tools/killloop.sh

# Opt-in sanitizer runs (not part of `make test`). TSan covers every TransactionManager and TransactionalKV
# test and every LogStore test but TSAN_SKIP (the tool, crash and power-loss suites: child processes and
# single-threaded sweeps, clean under TSan too but slow), about 510 tests; the engine uses pthread locks,
# which TSan understands. One `swift test` per TSAN_CHUNKS entry: fewer tests at once keeps the time
# limits of the TM tests clear of pool starvation under TSan. Swift Testing prints "passed" even when TSan
# reports a race (the exit code is 1): a report fails the target. ASan runs everything, with LeakSanitizer
# off (libXCTest leaks), one module at a time (below).
TSAN_CHUNKS := TransactionManagerTests TransactionalKVTests LogStoreTests
TSAN_SKIP := LogStoreTests\.[A-Za-z]*(Tool|PowerLoss|CrashTests|FourGiB|ChildProcess|MakeDeps|StressRestart|RestartCrash|FaultInjection|ErrorPath|SwapDamage|ZeroedSector|Damage|Dump)
tsan: deps
	$(SWIFT) build --build-tests --sanitize=thread --scratch-path .build-tsan
	@set -e; for chunk in $(TSAN_CHUNKS); do \
		echo "== tsan: $$chunk"; \
		status=0; $(SWIFT) test --skip-build --sanitize=thread --scratch-path .build-tsan --filter "$$chunk" \
			--skip '$(TSAN_SKIP)' > .build-tsan/$$chunk.log 2>&1 || status=$$?; \
		grep -E '^(✘|✔ Test run)' .build-tsan/$$chunk.log || true; \
		if grep -q 'WARNING: ThreadSanitizer' .build-tsan/$$chunk.log; then echo "make tsan: ThreadSanitizer report in $$chunk (.build-tsan/$$chunk.log)" >&2; exit 1; fi; \
		[ "$$status" = 0 ] || { echo "make tsan: $$chunk failed (exit $$status)" >&2; exit 1; }; \
	done; echo "make tsan: no ThreadSanitizer report"

# ASan ends a process at its first report: one `swift test` per ASAN_CHUNKS entry, so a report in one module
# leaves the others checked. Every chunk runs; the target fails at the end if any reported or failed.
ASAN_CHUNKS := LogFormatTests LogStoreTests TransactionManagerTests TransactionalKVTests
asan: deps
	$(SWIFT) build --build-tests --sanitize=address --scratch-path .build-asan
	@failed=""; for chunk in $(ASAN_CHUNKS); do \
		echo "== asan: $$chunk"; \
		status=0; ASAN_OPTIONS=detect_leaks=0 $(SWIFT) test --skip-build --sanitize=address --scratch-path .build-asan \
			--filter "$$chunk" > .build-asan/$$chunk.log 2>&1 || status=$$?; \
		grep -E '^(✘|✔ Test run)' .build-asan/$$chunk.log || true; \
		if grep -q 'ERROR: AddressSanitizer' .build-asan/$$chunk.log; then \
			echo "make asan: AddressSanitizer report in $$chunk (.build-asan/$$chunk.log)" >&2; failed="$$failed $$chunk"; \
		elif [ "$$status" != 0 ]; then echo "make asan: $$chunk failed (exit $$status, .build-asan/$$chunk.log)" >&2; failed="$$failed $$chunk"; fi; \
	done; [ -z "$$failed" ] || { echo "make asan: failed:$$failed" >&2; exit 1; }; echo "make asan: no AddressSanitizer report"

# Opt-in: DocC over each library's catalogue (Sources/*/*.docc) and doc comments, warnings as errors, so a
# ``Symbol`` link to something that does not exist (or lives in another module) fails. Output in .build/docc.
# First tools/doc-coverage.swift: every public symbol of DOC_COVERED has a `///` comment.
DOCC ?= docc
DOC_MODULES := LogFormat LogStore TransactionManager TransactionalKV
DOC_COVERED := LogFormat LogStore TransactionManager TransactionalKV

docs-check: deps
	@# dump-symbol-graph loads the test modules too: on a tree whose tests were never built it failed.
	$(SWIFT) build --build-tests
	$(SWIFT) package dump-symbol-graph >/dev/null
	@set -e; graphs=$$(ls -d .build/*/symbolgraph | head -n 1); $(SWIFT) tools/doc-coverage.swift $$graphs $(DOC_COVERED); \
	for m in $(DOC_MODULES); do \
		rm -rf .build/docc/$$m; mkdir -p .build/docc/$$m/graphs; \
		cp $$graphs/$$m.symbols.json .build/docc/$$m/graphs/; \
		for extension in $$graphs/$$m@*.symbols.json; do [ ! -e "$$extension" ] || cp "$$extension" .build/docc/$$m/graphs/; done; \
		echo "== $$m"; \
		$(DOCC) convert Sources/$$m/$$m.docc --additional-symbol-graph-dir .build/docc/$$m/graphs --output-path .build/docc/$$m/out \
			--fallback-display-name $$m --fallback-bundle-identifier $$m --warnings-as-errors; \
	done; echo "docs-check: every DocC link resolves"

bench: deps
	$(SWIFT) build -c release --product txlog
	./.build/release/txlog bench all --dir .build/bench-log

# Opt-in: TxLog next to fio, lz4, gzip, RocksDB, LevelDB, SQLite and PostgreSQL on one directory, about
# 5 minutes plus the build (installs the peers' Debian packages; COMPARE_SECONDS, COMPARE_DIR: see the
# script). Rewrites the generated section of docs/PERFORMANCE.md and docs/compare.svg.
compare:
	bash Benchmarks/compare/run.sh

clean:
	rm -rf .build .build-fuzz .build-tsan .build-asan demo-log
