#!/usr/bin/env python3
"""Compares two export directories of v6matrix, timings excluded.

    scripts/recordsdiff.py DIR_A DIR_B

Timings (round-trip and connect times, NTP offsets) and the free-text error details
of domains.jsonl (they quote local ports and clock times, and their wording depends on
timing, e.g. "EOF" or "i/o timeout" for one failed handshake) differ from one crawl to
the next and are left out; the structured outcomes (statuses, reachable, versions,
certificate validity) are compared; everything else must be equal: the same files, the same rows in the
same order, the same cells. Exit status 0 when equal; else the first differences.
Used by scripts/killsoak.sh.
"""
import csv
import json
import os
import sys

# CSV columns that hold timings.
TIMING_COLUMNS = {"min", "avg", "max", "std", "min6", "avg6", "max6", "std6", "offset_ms", "offset6_ms"}
# JSON keys that hold timings (domains.jsonl).
TIMING_KEYS = {"min_ms", "avg_ms", "max_ms", "std_ms", "rtt_ms", "offset_ms", "error"}


def strip(v):
    if isinstance(v, dict):
        return {k: strip(x) for k, x in v.items() if k not in TIMING_KEYS}
    if isinstance(v, list):
        return [strip(x) for x in v]
    return v


def rows(path):
    if path.endswith(".jsonl"):
        with open(path) as f:
            return [json.dumps(strip(json.loads(line)), sort_keys=True) for line in f]
    with open(path, newline="") as f:
        table = list(csv.reader(f))
    keep = [i for i, c in enumerate(table[0]) if c not in TIMING_COLUMNS] if table else []
    return [",".join(r[i] if i < len(r) else "" for i in keep) for r in table]


def main():
    a, b = sys.argv[1], sys.argv[2]
    fa, fb = sorted(os.listdir(a)), sorted(os.listdir(b))
    if fa != fb:
        print(f"files differ: {a} has {fa}, {b} has {fb}")
        return 1
    bad = 0
    for name in fa:
        ra, rb = rows(os.path.join(a, name)), rows(os.path.join(b, name))
        if ra == rb:
            continue
        bad += 1
        n = sum(1 for i in range(max(len(ra), len(rb))) if (ra[i:i + 1] or [None]) != (rb[i:i + 1] or [None]))
        print(f"{name}: {n} rows differ")
        for i in range(max(len(ra), len(rb))):
            x = ra[i] if i < len(ra) else "<none>"
            y = rb[i] if i < len(rb) else "<none>"
            if x != y:
                print(f"{name}: {len(ra)} and {len(rb)} rows, first difference at row {i + 1}:\n  {a}: {x}\n  {b}: {y}")
                break
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
