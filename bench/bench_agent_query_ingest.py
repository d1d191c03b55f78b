#!/usr/bin/env python3
"""Ingest latency of hotspan-agent while long queries run: a fresh agent on
a temporary database is loaded with PRELOAD spans; then one client sends
batches of 1000 spans over one keep-alive connection for SECONDS, first
alone, then while another client asks /api/v1/services over the whole
stored range back to back (a query that reads every span). Prints the
batch round-trip times (p50, p99, max) of both phases and how long the
queries took.

  bench/bench_agent_query_ingest.py <build dir> [--preload N] [--seconds S]
"""
import os, shutil, signal, sys, tempfile, threading, time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests",
                                "scripts"))
from agent_client import Client, dd_batch, start_agent, wait_exit  # noqa

PER_BATCH, SPANS_PER_TRACE = 1000, 10


def arg(name, default):
    if name in sys.argv:
        return float(sys.argv[sys.argv.index(name) + 1])
    return default


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(p / 100.0 * len(v)))]


def ingest(c, first_batch, seconds):
    """Sends batches for `seconds`; returns (batches sent, round trips)."""
    ntraces = PER_BATCH // SPANS_PER_TRACE
    times, i = [], first_batch
    t_end = time.monotonic() + seconds
    while time.monotonic() < t_end:
        payload = dd_batch(1 + i * ntraces, ntraces, SPANS_PER_TRACE)[0]
        t = time.monotonic()
        st = c.post_dd(payload)
        times.append(time.monotonic() - t)
        if st != 200:
            raise SystemExit("ingest status %d" % st)
        i += 1
    return i, times


def report(label, times):
    ms = [t * 1000 for t in times]
    print("%-28s %5d batches: p50 %7.1f ms  p99 %7.1f ms  max %7.1f ms"
          % (label, len(ms), pct(ms, 50), pct(ms, 99), max(ms)), flush=True)


def main():
    build = sys.argv[1]
    preload = int(arg("--preload", 300000))
    seconds = arg("--seconds", 10)
    work = tempfile.mkdtemp()
    db = os.path.join(work, "bench.db")
    proc, port = start_agent(os.path.join(build, "agent", "hotspan-agent"), db)
    c = Client(port, timeout=300)
    ntraces = PER_BATCH // SPANS_PER_TRACE
    batch = 0
    for batch in range(preload // PER_BATCH):
        if c.post_dd(dd_batch(1 + batch * ntraces, ntraces,
                              SPANS_PER_TRACE)[0]) != 200:
            raise SystemExit("preload failed")
    print("preloaded %d spans" % preload, flush=True)

    batch, alone = ingest(c, batch + 1, seconds)
    report("ingest alone", alone)

    stop = threading.Event()
    qtimes = []

    def query():
        q = Client(port, timeout=300)
        path = "/api/v1/services?from=0&to=%d" % (time.time_ns() + 10 ** 12)
        while not stop.is_set():
            t = time.monotonic()
            st, _ = q.request("GET", path)
            qtimes.append(time.monotonic() - t)
            if st != 200:
                raise SystemExit("query status %d" % st)
        q.close()

    qt = threading.Thread(target=query)
    qt.start()
    time.sleep(0.2)  # the first query is running
    batch, during = ingest(c, batch, seconds)
    stop.set()
    qt.join()
    report("ingest during queries", during)
    qms = [t * 1000 for t in qtimes]
    print("queries: %d, p50 %.0f ms, max %.0f ms" %
          (len(qms), pct(qms, 50), max(qms)), flush=True)
    c.close()
    proc.send_signal(signal.SIGTERM)
    wait_exit(proc, 120)
    shutil.rmtree(work, ignore_errors=True)


main()
