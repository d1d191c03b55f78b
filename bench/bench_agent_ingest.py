#!/usr/bin/env python3
"""Ingest rate of hotspan-agent: one client sends pre-packed Datadog
msgpack batches over one keep-alive connection to a fresh agent on a
temporary database, and reports spans/s over the whole run, per
200k-span segment (to see the rate as the database grows), and the
agent's resident memory (VmRSS now, VmHWM peak).

  bench/bench_agent_ingest.py <build dir> [total spans] [spans per batch]
                              [--seconds N: run for N s instead]
"""
import os, signal, sys, tempfile, time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests",
                                "scripts"))
from agent_client import Client, dd_batch, start_agent, wait_exit  # noqa


def rss(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(("VmRSS", "VmHWM")):
                k, v = line.split(":")
                out[k] = int(v.split()[0]) // 1024
    return out


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    seconds = None
    if "--seconds" in sys.argv:
        seconds = float(sys.argv[sys.argv.index("--seconds") + 1])
        args = [a for a in args if a != sys.argv[sys.argv.index("--seconds") + 1]]
    build = args[0]
    total = int(args[1]) if len(args) > 1 else 1000000
    per = int(args[2]) if len(args) > 2 else 1000
    spans_per_trace = 10
    ntraces = per // spans_per_trace
    # Fixed-size runs pre-pack every payload so that the client's own
    # packing is not measured; timed runs pack as they go.
    payloads = []
    if seconds is None:
        payloads = [dd_batch(1 + i * ntraces, ntraces, spans_per_trace)[0]
                    for i in range((total + per - 1) // per)]
    work = tempfile.mkdtemp()
    db = os.path.join(work, "bench.db")
    proc, port = start_agent(os.path.join(build, "agent", "hotspan-agent"), db)
    c = Client(port, timeout=120)
    sent = 0
    seg_start, seg_spans = time.monotonic(), 0
    t0 = time.monotonic()
    i = 0
    while True:
        if seconds is None and sent >= total:
            break
        if seconds is not None and time.monotonic() - t0 >= seconds:
            break
        payload = payloads[i] if payloads else \
            dd_batch(1 + i * ntraces, ntraces, spans_per_trace)[0]
        st = c.post_dd(payload)
        if st != 200:
            raise SystemExit("status %d" % st)
        sent += per
        seg_spans += per
        i += 1
        if seg_spans >= 200000:
            now = time.monotonic()
            r = rss(proc.pid)
            print("  at %8d spans: %7.0f spans/s (segment), RSS %d MiB"
                  % (sent, seg_spans / (now - seg_start), r["VmRSS"]),
                  flush=True)
            seg_start, seg_spans = now, 0
    el = time.monotonic() - t0
    r = rss(proc.pid)
    print("%d spans in %.1f s: %.0f spans/s; agent RSS %d MiB (peak %d MiB); "
          "database %.0f MiB" % (sent, el, sent / el, r["VmRSS"], r["VmHWM"],
                                 os.path.getsize(db) / 2 ** 20))
    c.close()
    proc.send_signal(signal.SIGTERM)
    wait_exit(proc, 120)
    for f in os.listdir(work):
        os.unlink(os.path.join(work, f))
    os.rmdir(work)


main()
