"""The Python side of wasmpool's I/O-bound measure (internal/benchcmp, fetch.go).

What a Python programmer writes for the job: a ThreadPoolExecutor of as many
threads as the Go side has workers, each URL fetched with urllib and read
whole. The first stdin line is the config, {"urls": [...], "workers": N};
then every further line asks for one round, all the URLs once, answered by
one JSON line on stdout when it is done ({} or {"error": ...}), so that the
Go harness can time Python's rounds interleaved with its own executors'. The executor lives as
long as the process: its threads are started once, as a long-lived
program's are.
"""

import concurrent.futures as cf
import json
import platform
import sys
import urllib.request

# The Go side never takes a proxy for a loopback server; neither does this.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def fetch(url):
    with OPENER.open(url, timeout=30) as resp:
        return resp.read()


def main():
    cfg = json.loads(sys.stdin.readline())
    urls = cfg["urls"]
    want = [("page /%d" % i).encode() for i in range(len(urls))]
    with cf.ThreadPoolExecutor(max_workers=cfg["workers"]) as ex:
        print(json.dumps({"python": platform.python_version()}), flush=True)
        for _ in sys.stdin:
            try:
                bodies = list(ex.map(fetch, urls))
            except Exception as e:  # the harness reports it, with the URL's error
                print(json.dumps({"error": repr(e)}), flush=True)
                continue
            bad = [i for i, b in enumerate(bodies) if b != want[i]]
            if bad:
                i = bad[0]
                print(json.dumps({"error": "%s answered %r, want %r" % (urls[i], bodies[i], want[i])}), flush=True)
                continue
            print("{}", flush=True)


if __name__ == "__main__":
    main()
