#!/usr/bin/python3
"""Peer for `deno task bench`: the same 1,000-node chain as the ivaan benchmark, memoised on disk
with joblib.Memory (Debian python3-joblib), a widely used Python result cache. Prints JSON with
the cold and fully cached wall times in ms. Usage: /usr/bin/python3 bench/joblib_chain.py DIR N"""
import json, sys, time
from joblib import Memory

cache_dir, n = sys.argv[1], int(sys.argv[2])
memory = Memory(cache_dir, verbose=0)

@memory.cache
def seed(value):
    return value

@memory.cache
def add(a, b, id):
    return (a + b + id) % 1_000_003

def chain():
    values = [seed(1), seed(2)]
    for i in range(2, n):
        values.append(add(values[i - 1], values[i - 2], i))
    return values[-1]

t0 = time.perf_counter(); cold_result = chain(); cold = (time.perf_counter() - t0) * 1000
samples = []
for _ in range(5):
    t0 = time.perf_counter(); assert chain() == cold_result; samples.append((time.perf_counter() - t0) * 1000)
print(json.dumps({"coldMs": cold, "cachedMedianMs": sorted(samples)[2], "result": cold_result}))
