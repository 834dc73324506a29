#!/usr/bin/env python3
"""Heap allocations per record (or commit) of a `txlog bench` path, without the setup's.

Runs `txlog bench KIND --json ARGS` twice under the malloc-count shim, for S1 and S2 seconds, and prints
(mallocs2 - mallocs1) / (records2 - records1): what one more record (commit, transaction) costs.

usage: per-record.py TXLOG SHIM KIND S1 S2 [bench args...]
  KIND: append (records of the `append` section), commit, 2pc (`commits`), kv (single-put transactions;
  the run's log-only baseline is subtracted at the `commit` figure given by MCOUNT_LOG_PER_COMMIT, default 0)
"""
import json, os, re, subprocess, sys

if len(sys.argv) < 6:
    sys.exit(__doc__)
txlog, shim, kind, s1, s2 = sys.argv[1:6]
extra = sys.argv[6:]
log_per_commit = float(os.environ.get('MCOUNT_LOG_PER_COMMIT', '0'))


def counted(j):
    """(records the figure is per, other log commits to subtract) of one run's JSON."""
    if kind == 'append':
        rows = j['append']['results']
        return sum(r['recordsPerSecond'] * r['seconds'] for r in rows), 0
    if kind == 'commit':
        return sum(r['commits'] for r in j['commit']['results']), 0
    if kind == '2pc':
        return sum(r['commits'] for r in j['2pc']['results']), 0
    if kind == 'kv':
        rows, sec = j['kv']['results'], float(j['seconds'])
        kv = sum(r['transactionsPerSecond'] * sec for r in rows if r['measurement'] == 'kvSinglePut')
        log = sum(r['commitsPerSecond'] * sec for r in rows if r['measurement'] == 'logCommits')
        return kv, log
    sys.exit(f'unknown kind {kind}')


def run(seconds):
    env = dict(os.environ, LD_PRELOAD=os.path.abspath(shim))
    p = subprocess.run([txlog, 'bench', kind, '--seconds', seconds, '--json'] + extra, env=env, capture_output=True, text=True)
    m = re.search(r'mcount: malloc=(\d+) calloc=(\d+) realloc=(\d+) posix_memalign=(\d+) aligned_alloc=(\d+) total=(\d+)', p.stderr)
    if p.returncode != 0 or not m:
        sys.exit(f'bench failed ({p.returncode}): {p.stderr[-2000:]}')
    return counted(json.loads(p.stdout)), [int(x) for x in m.groups()]


(r1, l1), c1 = run(s1)
(r2, l2), c2 = run(s2)
d = [b - a for a, b in zip(c1, c2)]
n = r2 - r1
if n <= 0:
    sys.exit(f'the longer run counted no more records ({r1:.0f} -> {r2:.0f}): use durations further apart')
total = d[5] - log_per_commit * (l2 - l1)
print(f'{kind} {" ".join(extra)}: {r1:.0f} -> {r2:.0f} records; per record: malloc {d[0] / n:.2f}, calloc {d[1] / n:.2f}, '
      f'realloc {d[2] / n:.2f}, posix_memalign {d[3] / n:.2f}, total {total / n:.2f}')
