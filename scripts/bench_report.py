#!/usr/bin/env python3
"""Merges bench-results/<bench>.json (one per benchmark binary, written by
benches/support) into one table on stdout and bench-results/bench.json.

Each figure is {"value", "unit", "target", "order"} and optionally "met"
("order" is the bench's own order, kept in the table). Without
"met", a target of the form "<= 10 ms", ">= 2000", "< 1.5 x" or a bare number
is checked against the value (time units converted); other targets are
shown as words and left unchecked.

Usage: python3 scripts/bench_report.py [results-dir]   (standard library only)
"""

import json
import os
import re
import sys
import time

ORDER = ["runtime", "signing", "emulator", "engine", "dynamic"]
TIME_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0}
TARGET = re.compile(r"^\s*(<=|>=|==|=|<|>)?\s*(-?[0-9][0-9,_]*(?:\.[0-9]+)?)\s*([^\s(]*)")


def check(value, unit, target):
    """True/False when the target can be checked from its words, else None."""
    match = TARGET.match(target or "")
    if not match:
        return None
    op, number, target_unit = match.group(1) or "==", match.group(2), match.group(3)
    if not match.group(1) and target.strip() != number:
        return None  # "1 per role", not a bare number
    limit = float(number.replace(",", "").replace("_", ""))
    if target_unit and target_unit != unit:
        if target_unit in TIME_UNITS and unit in TIME_UNITS:
            limit *= TIME_UNITS[target_unit] / TIME_UNITS[unit]
        else:
            return None
    return {
        "<=": value <= limit,
        ">=": value >= limit,
        "<": value < limit,
        ">": value > limit,
        "=": value == limit,
        "==": value == limit,
    }[op]


def fmt(value):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if abs(value) >= 100 or float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:.3f}"


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    directory = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "bench-results")
    names = sorted(
        f[: -len(".json")]
        for f in os.listdir(directory) if f.endswith(".json") and f != "bench.json"
    ) if os.path.isdir(directory) else []
    if not names:
        print(f"no results in {directory}: run the benches first", file=sys.stderr)
        return 1
    names.sort(key=lambda n: (ORDER.index(n) if n in ORDER else len(ORDER), n))

    rows = []
    for name in names:
        with open(os.path.join(directory, name + ".json"), encoding="utf-8") as f:
            figures = json.load(f)
        ordered = sorted(figures.items(), key=lambda item: item[1].get("order", 0))
        for figure, entry in ordered:
            value, unit, target = entry.get("value"), entry.get("unit", ""), entry.get("target", "")
            met = entry.get("met")
            if met is None and isinstance(value, (int, float)):
                met = check(value, unit, target)
            rows.append({"bench": name, "figure": figure, "value": value, "unit": unit,
                         "target": target, "met": met})

    headers = ["bench", "figure", "value", "unit", "target", "met"]
    cells = [[r["bench"], r["figure"], fmt(r["value"]), r["unit"], r["target"],
              {True: "yes", False: "MISSED", None: ""}[r["met"]]] for r in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]

    def line(values):
        out = []
        for i, v in enumerate(values):
            out.append(v.rjust(widths[i]) if i == 2 else v.ljust(widths[i]))
        return "  ".join(out).rstrip()

    print(line(headers))
    print(line(["-" * w for w in widths]))
    for c in cells:
        print(line(c))
    missed = [f"{r['bench']}: {r['figure']}" for r in rows if r["met"] is False]
    print()
    checked = sum(r["met"] is not None for r in rows)
    print(f"{len(rows)} figures from {len(names)} benches; {checked} with a checkable target, "
          f"{len(missed)} missed" + (": " + "; ".join(missed) if missed else ""))

    merged = {
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "quick": os.environ.get("BENCH_QUICK") == "1",
        "benches": names,
        "figures": rows,
        "missed": missed,
    }
    with open(os.path.join(directory, "bench.json"), "w", encoding="utf-8") as f:
        json.dump(merged, f, indent=2)
        f.write("\n")
    print(f"written to {os.path.relpath(os.path.join(directory, 'bench.json'))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
