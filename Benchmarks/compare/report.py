#!/usr/bin/env python3
"""Reads the raw outputs of Benchmarks/compare/run.sh and reports them.

Prints the tables (absolute figures, ours over each peer, ours over each limit, the issue's targets),
writes RESULTS/results.tsv, and, with --docs/--svg, rewrites the generated section of
docs/PERFORMANCE.md (between the compare markers; appended at the end when they are absent) and the
chart. Standard library only.

    report.py --results DIR [--docs docs/PERFORMANCE.md --svg docs/compare.svg]
"""

import argparse
import json
import os
import platform
import re
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import chart  # noqa: E402

BEGIN = "<!-- compare:begin -->"
END = "<!-- compare:end -->"

# Peers of the durable-write comparison: key, label, what one operation is, the reference
# figures on this machine kind (ops/s at 1 and 16), which of ours it is compared with, the target at 16.
PEERS = [
    ("leveldb", "LevelDB", "put, sync=true, 16 B key + 100 B value", {1: 5400, 16: 29000}, ["commit", "kv"], 3.0),
    ("rocksdb", "RocksDB", "db_bench fillseq, sync=1, 16 B key + 100 B value", {1: 5000, 16: 22000}, ["commit", "kv"], 3.0),
    ("sqlite", "SQLite", "WAL, synchronous=FULL: BEGIN IMMEDIATE; INSERT 1 row; COMMIT", {1: 7000, 16: 6400}, ["commit", "kv"], 3.0),
    ("pg-commit", "PostgreSQL commit", "pgbench: INSERT 1 row (autocommit)", {1: 2500, 16: 11000}, ["commit", "kv"], 3.0),
    ("pg-prepared", "PostgreSQL 2PC", "pgbench: BEGIN; INSERT; PREPARE TRANSACTION; COMMIT PREPARED", {1: 1900, 16: 6600}, ["2pc"], 5.0),
]
OURS = {
    "commit": "log commit (append 100 B + flush)",
    "kv": "KV 1-put transaction (100 B value)",
    "2pc": "2PC across 2 durable RMs",
}
CONCURRENCY = [1, 16]


# ------------------------------------------------------------------------------------------------
# Reading the raw files


def read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def read_text(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return None


def read_tsv(path):
    out = {}
    for line in (read_text(path) or "").splitlines():
        key, _, value = line.partition("\t")
        if key:
            out[key] = value
    return out


def section(doc, name):
    return ((doc or {}).get(name) or {}).get("results") or []


def harness(res, engine, n):
    d = read_json(os.path.join(res, f"{engine}-{n}.json"))
    if not d:
        return None
    return {"ops": d["opsPerSecond"], "p50": d.get("p50us"), "p99": d.get("p99us")}


def db_bench(res, n):
    text = read_text(os.path.join(res, f"rocksdb-{n}.txt"))
    if not text:
        return None
    m = re.search(r"^fillseq\s*:\s*([\d.]+) micros/op\s+(\d+) ops/sec", text, re.M)
    if not m:
        return None
    out = {"ops": float(m.group(2)), "p50": None, "p99": None}
    p = re.search(r"Percentiles: P50: ([\d.]+) P75: [\d.]+ P99: ([\d.]+)", text)
    if p:
        out["p50"], out["p99"] = float(p.group(1)), float(p.group(2))
    out["assertions"] = "Assertions are enabled" in text
    return out


def pgbench(res, kind, n):
    text = read_text(os.path.join(res, f"pg-{kind}-{n}.txt"))
    if not text:
        return None
    m = re.search(r"^tps = ([\d.]+)", text, re.M)
    if not m:
        return None
    lat = re.search(r"^latency average = ([\d.]+) ms", text, re.M)
    failed = re.search(r"^number of failed transactions: (\d+)", text, re.M)
    return {"ops": float(m.group(1)), "p50": None, "p99": None, "avg": float(lat.group(1)) * 1000 if lat else None,
            "failed": int(failed.group(1)) if failed else 0}


def fio(res, name):
    d = read_json(os.path.join(res, f"fio-{name}.json"))
    if not d or not d.get("jobs"):
        return None
    w = d["jobs"][0]["write"]
    return {"iops": w["iops"], "MBps": w["bw_bytes"] / 1e6}


def ours(res):
    out = {}
    for r in section(read_json(os.path.join(res, "ours-commit.json")), "commit"):
        out[("commit", r["writers"])] = {"ops": r["commitsPerSecond"], "p50": r["latency"]["p50us"], "p99": r["latency"]["p99us"],
                                         "perSync": r["commitsPerFdatasync"]}
    for r in section(read_json(os.path.join(res, "ours-kv.json")), "kv"):
        if r["measurement"] == "kvSinglePut":
            out[("kv", r["clients"])] = {"ops": r["transactionsPerSecond"], "p50": None, "p99": None, "perSync": r["commitsPerFdatasync"]}
    for r in section(read_json(os.path.join(res, "ours-2pc.json")), "2pc"):
        out[(r["mode"], r["clients"])] = {"ops": r["commitsPerSecond"], "p50": r["latency"]["p50us"], "p99": r["latency"]["p99us"],
                                          "perSync": r["commitsPerFdatasync"]}
    return out


# ------------------------------------------------------------------------------------------------
# Building the rows


def rate(v):
    if v is None:
        return "n/a"
    if v >= 1e6:
        return f"{v / 1e6:.2f}M"
    if v >= 1e4:
        return f"{v / 1e3:.1f}k"
    return f"{v:.0f}"


def ratio_text(v):
    return "n/a" if v is None else (f"{v:.2f}x" if v < 10 else f"{v:.1f}x")


def met(value, target):
    if target is None:
        return "-"
    if value is None:
        return "n/a"
    return "yes" if value >= target else "NO"


def durable_rows(res, our):
    peers = {}
    for key, *_ in PEERS:
        for n in CONCURRENCY:
            if key in ("leveldb", "sqlite"):
                peers[(key, n)] = harness(res, key, n)
            elif key == "rocksdb":
                peers[(key, n)] = db_bench(res, n)
            else:
                peers[(key, n)] = pgbench(res, key[3:], n)
    rows = []
    for key, label, what, refs, variants, target in PEERS:
        for n in CONCURRENCY:
            p = peers[(key, n)]
            for v in variants:
                o = our.get((v, n))
                r = o["ops"] / p["ops"] if o and p and p["ops"] > 0 else None
                t = target if n == 16 else None
                rows.append({"peer": label, "peerKey": key, "what": what, "n": n, "peerOps": p["ops"] if p else None,
                             "peerP50": p.get("p50") if p else None, "peerP99": p.get("p99") if p else None,
                             "ref": refs[n], "ours": OURS[v], "oursKey": v, "oursOps": o["ops"] if o else None,
                             "ratio": r, "target": t, "met": met(r, t)})
    return rows, peers


def limit_rows(res, our):
    rows = []
    before, after = fio(res, "fdatasync-before"), fio(res, "fdatasync-after")
    runs = [f["iops"] for f in (before, after) if f]
    limit = sum(runs) / len(runs) if runs else None
    one = our.get(("commit", 1))
    r = one["ops"] / limit if one and limit else None
    fio_note = " / ".join(f"{x:.0f}" for x in runs)
    rows.append({"measure": "1 writer: append 100 B + flush per commit", "ours": one["ops"] if one else None, "oursUnit": "commits/s",
                 "limit": limit, "limitUnit": "IOPS", "limitName": f"fio 4 KiB write + fdatasync, QD1 (mean of before/after: {fio_note})",
                 "ratio": r, "target": 0.9, "met": met(r, 0.9)})
    buffered = fio(res, "buffered")
    large = section(read_json(os.path.join(res, "ours-append.json")), "append-large")
    ours_mb = large[0]["MBps"] if large else None
    r = ours_mb / buffered["MBps"] if ours_mb and buffered else None
    rows.append({"measure": "64 KiB records, flush every 4 MiB (codec none)", "ours": ours_mb, "oursUnit": "MB/s",
                 "limit": buffered["MBps"] if buffered else None, "limitUnit": "MB/s",
                 "limitName": "fio 1 MiB sequential buffered writes, fsync at end", "ratio": r, "target": None, "met": "-"})
    sources = [("synthetic log records (32 MiB)", "ours-compress.json", "compress")]
    sources += [(f"{label} WAL", f"ours-walcomp-{name}.json", "compress-input") for name, label in (("postgresql", "PostgreSQL"), ("rocksdb", "RocksDB"))]
    for label, file, sec in sources:
        rs = section(read_json(os.path.join(res, file)), sec)
        mine = next((x for x in rs if x["codec"] == "lz4"), None)
        cli = next((x for x in rs if x["codec"] == "lz4-cli"), None)
        r = mine["compressMBps"] / cli["compressMBps"] if mine and cli else None
        same = mine and cli and abs(mine["ratio"] / cli["ratio"] - 1) <= 0.005
        ok = met(r, 0.9)
        if ok == "yes" and not same:
            ok = "NO (ratio)"
        rows.append({"measure": f"lz4 on 64 KiB blocks, {label}", "ours": mine["compressMBps"] if mine else None, "oursUnit": "MB/s",
                     "limit": cli["compressMBps"] if cli else None, "limitUnit": "MB/s",
                     "limitName": "lz4 -b1 -B65536, same bytes"
                     + (f" (ratio ours {mine['ratio']:.3f}, CLI {cli['ratio']:.3f})" if mine and cli else ""),
                     "ratio": r, "target": 0.9, "met": ok})
    return rows, {"fdatasync": runs, "buffered": buffered}


def wal_rows(res):
    rows = []
    for name, label in (("postgresql", "PostgreSQL WAL (pgbench TPC-B-like)"), ("rocksdb", "RocksDB WAL (db_bench fillrandom)")):
        doc = read_json(os.path.join(res, f"ours-walcomp-{name}.json"))
        if not doc:
            continue
        size = None
        for r in section(doc, "compress-log"):
            size = r["payloadBytes"]
            rows.append({"data": label, "tool": f"ours: log append, {r['codec']}", "ratio": r["ratio"], "MBps": r["appendMBps"],
                         "note": f"{r['recordBytes']} B records; on-disk bytes; append+flush {r['appendFlushMBps']:.0f} MB/s"})
        for r in section(doc, "compress-input"):
            size = size or r.get("bytes")
            if r["codec"] == "lz4-cli":
                rows.append({"data": label, "tool": "lz4 -b1 -B65536 (CLI)", "ratio": r["ratio"], "MBps": r["compressMBps"],
                             "note": f"decompress {r['decompressMBps']:.0f} MB/s"})
            elif r["codec"] != "none":
                rows.append({"data": label, "tool": f"ours: {r['codec']} codec, 64 KiB blocks in memory", "ratio": r["ratio"],
                             "MBps": r["compressMBps"], "note": f"decompress {r['decompressMBps']:.0f} MB/s"})
        for line in (read_text(os.path.join(res, f"gzip-{name}.json")) or "").splitlines():
            g = json.loads(line)
            rows.append({"data": label, "tool": f"{g['tool']} (CLI), per 64 KiB block", "ratio": g["bytes"] / max(1, g["compressedBytes"]),
                         "MBps": g["bytes"] / (g["nanoseconds"] / 1e9) / 1e6, "note": "one gzip process over the block files"})
        for r in rows:
            if r["data"] == label:
                r["bytes"] = size
    return rows


# ------------------------------------------------------------------------------------------------
# Machine description


def machine(res):
    m = read_tsv(os.path.join(res, "machine.tsv"))
    cpuinfo = read_text("/proc/cpuinfo") or ""
    model = re.search(r"^model name\s*:\s*(.*)$", cpuinfo, re.M)
    mem = re.search(r"^MemTotal:\s*(\d+) kB", read_text("/proc/meminfo") or "", re.M)
    packages = {k.split(":", 1)[1]: v for k, v in m.items() if k.startswith("package:")}
    return {
        "cpu": f"{os.cpu_count()} CPUs, {model.group(1).strip() if model else 'unknown model'}",
        "memory": f"{int(mem.group(1)) / 1048576:.1f} GiB" if mem else "unknown",
        "kernel": f"Linux {platform.release()}",
        "filesystem": f"{m.get('filesystem', 'unknown')}, mounted {m.get('mount_options', 'unknown')}",
        "workDir": m.get("work_dir", "?"),
        "seconds": m.get("seconds", "?"),
        "walMib": m.get("wal_mib", "?"),
        "commit": m.get("commit", "unknown"),
        "swift": m.get("swift", "unknown"),
        "packages": packages,
        "loadStart": read_tsv(os.path.join(res, "load-start.tsv")),
        "loadEnd": read_tsv(os.path.join(res, "load-end.tsv")),
        "failures": [line for line in (read_text(os.path.join(res, "failures.txt")) or "").splitlines() if line],
    }


# ------------------------------------------------------------------------------------------------
# Output


def text_table(headers, rows):
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()
    return "\n".join([line(headers), line(["-" * w for w in widths])] + [line(r) for r in rows])


def md_table(headers, rows):
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    out += ["| " + " | ".join(str(c).replace("|", "\\|") for c in r) + " |" for r in rows]
    return "\n".join(out)


def durable_cells(rows):
    return [[r["peer"], r["n"], rate(r["peerOps"]), rate(r["ref"]), r["ours"], rate(r["oursOps"]), ratio_text(r["ratio"]),
             f">= {r['target']:.0f}x" if r["target"] else "-", r["met"]] for r in rows]


DURABLE_HEADERS = ["peer", "writers", "peer ops/s", "issue ref", "ours", "ours ops/s", "ours/peer", "target", "met?"]


def limit_cells(rows):
    return [[r["measure"], f"{rate(r['ours'])} {r['oursUnit']}", r["limitName"], f"{rate(r['limit'])} {r['limitUnit']}",
             ratio_text(r["ratio"]), f">= {r['target']:.2f}" if r["target"] else "-", r["met"]] for r in rows]


LIMIT_HEADERS = ["ours", "ours figure", "limit", "limit figure", "ours/limit", "target", "met?"]


def wal_cells(rows):
    return [[r["data"], r["tool"], f"{r['ratio']:.3f}", f"{r['MBps']:.0f}", r["note"]] for r in rows]


WAL_HEADERS = ["data", "compressor", "ratio", "MB/s", "note"]


def peer_notes(peers):
    notes = []
    for n in CONCURRENCY:
        p = peers.get(("rocksdb", n))
        if p and p.get("assertions"):
            notes.append("Debian's db_bench reports \"Assertions are enabled\": RocksDB runs with its debug checks, which costs CPU "
                         "(the sync-bound rates here are dominated by fdatasync).")
            break
    for n in CONCURRENCY:
        p = peers.get(("pg-prepared", n))
        if p and p.get("failed"):
            notes.append(f"pgbench reported {p['failed']} failed PREPARE/COMMIT PREPARED transactions at {n} clients.")
    return notes


def write_tsv(res, durable, limits, wal):
    with open(os.path.join(res, "results.tsv"), "w") as f:
        f.write("table\tname\tconcurrency\tvalue\tunit\tours\tratio\ttarget\tmet\n")
        for r in durable:
            f.write(f"durable\t{r['peer']} vs {r['oursKey']}\t{r['n']}\t{r['peerOps']}\tops/s\t{r['oursOps']}\t{r['ratio']}\t"
                    f"{r['target']}\t{r['met']}\n")
        for r in limits:
            f.write(f"limit\t{r['measure']}\t1\t{r['limit']}\t{r['limitUnit']}\t{r['ours']}\t{r['ratio']}\t{r['target']}\t{r['met']}\n")
        for r in wal:
            f.write(f"wal\t{r['data']}: {r['tool']}\t-\t{r['MBps']}\tMB/s\t-\t{r['ratio']}\t-\t-\n")


def summary(durable, limits):
    checked = [r for r in durable if r["target"]] + [r for r in limits if r["target"]]
    ok = sum(1 for r in checked if r["met"] == "yes")
    return ok, len(checked)


def docs_section(mach, durable, limits, wal, peers, svg_name):
    p = mach["packages"]
    ls, le = mach["loadStart"], mach["loadEnd"]
    ok, total = summary(durable, limits)
    commit, _, dirty = mach["commit"].partition(" ")
    dirty = f" {dirty}" if dirty else ""
    lines = [
        BEGIN,
        "### Latest run (generated by `make compare`; do not edit between the markers)",
        "",
        f"Run at {ls.get('time', '?')} on commit `{commit}`{dirty}, {mach['seconds']} s per point. "
        f"**{ok} of {total} target checks met.** The machine may be shared with other work (see the load averages), "
        "so every figure is noisy, and each ratio compares runs taken seconds to minutes apart in this one run.",
        "",
        md_table(["", ""], [
            ["CPU", mach["cpu"]],
            ["Memory", mach["memory"]],
            ["Kernel", mach["kernel"]],
            ["Work directory", f"`{mach['workDir']}` on {mach['filesystem']}"],
            ["Load average (1, 5, 15 min)", f"start {ls.get('loadavg', '?')}; end {le.get('loadavg', '?')}"],
            ["`uptime` at start / end", f"`{ls.get('uptime', '?').strip()}` / `{le.get('uptime', '?').strip()}`"],
            ["Peers (Debian packages)", ", ".join(f"{k} {v}" for k, v in p.items())],
            ["Ours", f"txlog (release), {mach['swift']}"],
        ]),
        "",
        "#### Durable writes: ours over each peer",
        "",
        md_table(DURABLE_HEADERS, durable_cells(durable)),
        "",
        "\"issue ref\" is the issue's reference figure for the peer on this machine kind; \"peer ops/s\" is what it did in this run. "
        "Targets apply at 16 writers.",
        "",
        f"![ours vs each peer, ops/s, log scale]({svg_name})",
        "",
        "#### Ours over the physical limits",
        "",
        md_table(LIMIT_HEADERS, limit_cells(limits)),
        "",
    ]
    if wal:
        lines += ["#### Real WAL bytes: compression ratio and speed", "", md_table(WAL_HEADERS, wal_cells(wal)), ""]
        sizes = sorted({(r["data"], r.get("bytes")) for r in wal if r.get("bytes")})
        if sizes:
            lines += ["Data: " + "; ".join(f"{d}: {b / 1048576:.1f} MiB" for d, b in sizes) + ".", ""]
    notes = peer_notes(peers)
    if mach["failures"]:
        notes.append("Steps that failed in this run (their rows say n/a): " + "; ".join(mach["failures"]) + ".")
    if notes:
        lines += ["Notes: " + " ".join(notes), ""]
    lines.append(END)
    return "\n".join(lines)


def update_docs(path, text):
    with open(path) as f:
        doc = f.read()
    if BEGIN in doc and END in doc and doc.index(BEGIN) < doc.index(END):
        doc = doc[: doc.index(BEGIN)] + text + doc[doc.index(END) + len(END):]
    else:
        doc = doc.rstrip("\n") + "\n\n" + text + "\n"
    with open(path, "w") as f:
        f.write(doc)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", required=True)
    ap.add_argument("--docs")
    ap.add_argument("--svg")
    args = ap.parse_args()
    res = args.results

    our = ours(res)
    durable, peers = durable_rows(res, our)
    limits, _ = limit_rows(res, our)
    wal = wal_rows(res)
    mach = machine(res)
    write_tsv(res, durable, limits, wal)

    print()
    print(f"machine: {mach['cpu']}, {mach['memory']}, {mach['kernel']}; work dir {mach['workDir']} on {mach['filesystem']}")
    print(f"uptime at start: {mach['loadStart'].get('uptime', '?').strip()}")
    print(f"uptime at end:   {mach['loadEnd'].get('uptime', '?').strip()}")
    print(f"commit {mach['commit']}; {mach['seconds']} s per point")
    print("\n== Durable writes: ours over each peer (targets at 16 writers)\n")
    print(text_table(DURABLE_HEADERS, durable_cells(durable)))
    print("\n== Ours over the physical limits\n")
    print(text_table(LIMIT_HEADERS, limit_cells(limits)))
    if wal:
        print("\n== Real WAL bytes: compression\n")
        print(text_table(WAL_HEADERS, wal_cells(wal)))
    for note in peer_notes(peers):
        print("note:", note)
    for f in mach["failures"]:
        print("FAILED step:", f)
    ok, total = summary(durable, limits)
    print(f"\n{ok} of {total} target checks met")

    if args.svg:
        chart.write_svg(args.svg, durable, f"TxLog vs peers, ops/s (log scale); {mach['cpu']}; load {mach['loadStart'].get('loadavg', '?')}")
    if args.docs:
        update_docs(args.docs, docs_section(mach, durable, limits, wal, peers, os.path.basename(args.svg or "compare.svg")))
        print(f"wrote {args.docs}" + (f" and {args.svg}" if args.svg else ""))


if __name__ == "__main__":
    main()
