"""The Python side of wasmpool's benchmark harness (internal/benchcmp).

Reads a JSON config on stdin, runs each cell on concurrent.futures'
ThreadPoolExecutor or ProcessPoolExecutor, measured exactly as the Go
harness measures wasmpool (see measure.go: the same warm-up, percentiles
and batch sizes), and prints the figures as JSON on stdout. Progress lines
go to stderr, prefixed "progress: ".
"""

import concurrent.futures as cf
import hashlib
import json
import platform
import sys
import time


def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


# The tasks: the same work as the Go guests and the Go pool, the same way
# (parse the input, compute, format the output).
def task_noop(data):
    return b""


def task_fib(data):
    return str(fib(int(data))).encode()


def task_sha256(data):
    return hashlib.sha256(data).hexdigest().encode()


TASKS = {"noop": task_noop, "fib": task_fib, "sha256": task_sha256}


def percentile(sorted_ns, p):
    """Nearest rank, as measure.go's percentile."""
    if not sorted_ns:
        return 0
    i = (len(sorted_ns) * p + 99) // 100
    return sorted_ns[min(max(i - 1, 0), len(sorted_ns) - 1)]


def check(out, want):
    if out != want:
        raise SystemExit(f"task output {out!r}, want {want!r}")


def latency(ex, fn, arg, want, timeout, cfg):
    budget = cfg["budget_ns"]
    warm_end = time.perf_counter_ns() + budget // 10
    i = 0
    while i < 2 or time.perf_counter_ns() < warm_end:
        check(ex.submit(fn, arg).result(timeout), want)
        i += 1
    samples = []
    end = time.perf_counter_ns() + budget
    while len(samples) < cfg["min_samples"] or (
        time.perf_counter_ns() < end and len(samples) < cfg["max_samples"]
    ):
        start = time.perf_counter_ns()
        out = ex.submit(fn, arg).result(timeout)
        samples.append(time.perf_counter_ns() - start)
        check(out, want)
    samples.sort()
    return {"p50_ns": percentile(samples, 50), "p99_ns": percentile(samples, 99), "samples": len(samples)}


def batch_size(cfg, p50, workers):
    """As measure.go's batchSize."""
    n = 1000
    if p50 > 0:
        n = int((cfg["budget_ns"] // 20) / p50 * workers)
    return min(max(n, 2 * workers), 1000)


def throughput(ex, fn, arg, want, timeout, cfg, size):
    def batch():
        fs = [ex.submit(fn, arg) for _ in range(size)]
        for f in fs:
            check(f.result(timeout), want)

    batch()
    tasks = 0
    start = time.perf_counter_ns()
    while tasks == 0 or time.perf_counter_ns() - start < cfg["budget_ns"]:
        batch()
        tasks += size
    elapsed = (time.perf_counter_ns() - start) / 1e9
    return {"tasks_per_s": tasks / elapsed, "tasks": tasks, "batch": size}


def main():
    cfg = json.load(sys.stdin)
    inputs = {
        "noop": b"",
        "fib": str(cfg["fib_n"]).encode(),
        "sha256": bytes(i % 251 for i in range(cfg["sha_size"])),
    }
    results = []
    cells = cfg["cells"]
    for i, cell in enumerate(cells):
        task, w = cell["task"], cell["workers"]
        print(f"progress: [{i + 1}/{len(cells)}] {cell['label']}, {cell['system']}, {w} worker(s)",
              file=sys.stderr, flush=True)
        make = cf.ThreadPoolExecutor if cell["kind"] == "thread" else cf.ProcessPoolExecutor
        timeout = cfg["timeout_s"] if cell["timeout"] else None
        want = cell["want"].encode()
        with make(max_workers=w) as ex:
            lat = latency(ex, TASKS[task], inputs[task], want, timeout, cfg)
            tp = throughput(ex, TASKS[task], inputs[task], want, timeout, cfg, batch_size(cfg, lat["p50_ns"], w))
        results.append({"workload": cell["workload"], "system": cell["system"], "workers": w,
                        "latency": lat, "throughput": tp})
    json.dump({"python": platform.python_version(), "cells": results}, sys.stdout)


if __name__ == "__main__":
    main()
