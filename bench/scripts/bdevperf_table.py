"""Reads the result table that SPDK's bdevperf and bfsperf print (the same layout).

Imported by the bench scripts, or run as `python3 bdevperf_table.py FILE...` to print each
file's job rows and Total. The table runs from the "Device Information" header to the
"Total" line; a job row is "<name> : runtime IOPS MiB/s Fail/s TO/s avg min max".
"""
import re
import sys


def table(path):
    """The lines of the table in `path`, header to Total (ValueError if there is none)."""
    lines = open(path, errors="replace").read().splitlines()
    start = next((i for i, l in enumerate(lines) if "Device Information" in l), None)
    end = next((i for i, l in enumerate(lines) if l.strip().startswith("Total")), None)
    if start is None or end is None or end < start:
        raise ValueError(f"{path}: no bdevperf result table (did the run fail?)")
    return lines[start - 1:end + 1]


def _numbers(line):
    return [float(x) for x in re.split(r":\s*", line, maxsplit=1)[1].split()]


def rows(path):
    """The job rows as (name, runtime_s, iops, fail_per_s), then the Total as
    (iops, fail_per_s)."""
    jobs, total = [], None
    for line in table(path):
        s = line.strip()
        if s.startswith("Total"):
            n = _numbers(s)
            total = (n[0], n[2])
        elif ":" in s and not s.startswith(("Job:", "Device Information")) \
                and re.match(r"^\S+\s*:\s*[\d.]+\s", s):
            name = s.split(":", 1)[0].strip()
            n = _numbers(s)
            jobs.append((name, n[0], n[1], n[3]))
    if total is None:
        raise ValueError(f"{path}: no Total row")
    return jobs, total


def check(path):
    """Total IOPS of the run in `path`; raises ValueError unless every row (and the Total)
    has non-zero IOPS and no failed I/O."""
    jobs, (iops, fails) = rows(path)
    if not jobs:
        raise ValueError(f"{path}: no job rows")
    for name, _, j_iops, j_fails in jobs:
        if j_iops <= 0 or j_fails != 0:
            raise ValueError(f"{path}: job {name}: {j_iops} IOPS, {j_fails} failed/s")
    if iops <= 0 or fails != 0:
        raise ValueError(f"{path}: Total: {iops} IOPS, {fails} failed/s")
    return iops


if __name__ == "__main__":
    for p in sys.argv[1:]:
        print("\n".join(table(p)))
