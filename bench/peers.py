#!/usr/bin/env python3
"""bench/peers.py - the empty call through Python's process pools, timed one
call at a time like ember-bench's warm call: ProcessPoolExecutor(1 worker)
.submit(f).result() and multiprocessing.Pool(1).apply(f), in alternating
rounds. The caller on CPU 0, each pool's worker on CPU 1 (pinned by the
pool's initializer) where there are two CPUs. One JSON line per figure:
rtt_p50_us, rtt_p99_us, rtt_p99_9_us and the CDF (rtt_cdf_us, "p").
Usage: peers.py [--quick]"""
import concurrent.futures
import json
import multiprocessing
import os
import sys
import time


def empty(x):
    return x + 1


def pin(cpu):
    os.sched_setaffinity(0, {cpu})


def main():
    quick = "--quick" in sys.argv[1:]
    two = (os.cpu_count() or 1) >= 2
    if two:
        pin(0)  # before the pools start their threads and processes
    init, args = (pin, (1,)) if two else (None, ())
    ctx = multiprocessing.get_context("fork")
    ppe = concurrent.futures.ProcessPoolExecutor(1, mp_context=ctx, initializer=init, initargs=args)
    pool = ctx.Pool(1, initializer=init, initargs=args)
    calls = {
        "python_ppe": lambda i: ppe.submit(empty, i).result(),
        "python_mp_pool": lambda i: pool.apply(empty, (i,)),
    }
    lat = {name: [] for name in calls}
    n, rounds = (300, 3) if quick else (3000, 5)
    for name, call in calls.items():  # warm up
        for i in range(300):
            call(i)
    now = time.perf_counter_ns
    for _ in range(rounds):
        for name, call in calls.items():
            out = lat[name]
            for i in range(n):
                t = now()
                if call(i) != i + 1:
                    sys.exit(f"peers.py: {name}: a wrong result")
                out.append(now() - t)
    ppe.shutdown()
    pool.close()
    pool.join()
    for name, v in lat.items():
        v.sort()
        q = lambda p: v[int(p * (len(v) - 1))] / 1000.0
        base = {"unit": "us", "system": name, "quick": quick, "pinned_apart": two}
        for metric, p in (("rtt_p50_us", 0.5), ("rtt_p99_us", 0.99), ("rtt_p99_9_us", 0.999)):
            print(json.dumps({"metric": metric, "value": round(q(p), 3), **base}))
        for p in [0.01 + 0.02 * k for k in range(50)] + [0.995, 0.999, 0.9995, 0.9999]:
            print(json.dumps({"metric": "rtt_cdf_us", "value": round(q(p), 3), **base, "p": round(p, 4)}))


if __name__ == "__main__":
    main()
