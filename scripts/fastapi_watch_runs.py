"""Run wall time of fastapi-watch, the reference implementation, for the
probe counts `scripts/bench-scale` measures axum-watch at.

Not a test: `scripts/bench-scale` runs it (in a virtualenv with
fastapi-watch 1.5.11 and uvicorn) beside `scale_bench runs`, so both are
measured on the same machine in the same run.

For each count in PROBES (default 1,10,100,1000,10000) it registers that
many probes on a `HealthRegistry` (no poll loop, every other setting at its
default) whose check answers healthy with two details at once ("cheap"), or
after `asyncio.sleep(SLEEP_MS / 1000)` ("slow"), then times
`registry.run_all()` RUNS times (default 10, after 2 untimed) on one asyncio
loop, as one uvicorn worker would run them. It prints one `FASTAPI_WATCH`
line per count with the median and the minimum in milliseconds.
"""

import asyncio
import os
import statistics
import time

from fastapi import FastAPI
from fastapi_watch import BaseProbe, HealthRegistry
from fastapi_watch.models import ProbeResult, ProbeStatus


class BenchProbe(BaseProbe):
    def __init__(self, name: str, index: int, sleep_s: float) -> None:
        self.name = name
        self.index = index
        self.sleep_s = sleep_s

    async def check(self) -> ProbeResult:
        if self.sleep_s:
            await asyncio.sleep(self.sleep_s)
        return ProbeResult(
            name=self.name,
            status=ProbeStatus.HEALTHY,
            details={"pool_size": 8 + self.index % 7, "shard": self.index % 16},
        )


def registry(count: int, sleep_s: float) -> HealthRegistry:
    reg = HealthRegistry(FastAPI(), poll_interval_ms=None)
    for i in range(count):
        reg.add(BenchProbe(f"probe-{i:05}", i, sleep_s), critical=i % 3 != 0)
    return reg


async def time_runs(reg: HealthRegistry, runs: int) -> tuple[float, float]:
    for _ in range(2):
        await reg.run_all()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        await reg.run_all()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), min(times)


async def main() -> None:
    counts = [int(n) for n in os.environ.get("PROBES", "1,10,100,1000,10000").split(",")]
    runs = max(1, int(os.environ.get("RUNS", "10")))
    sleep_s = int(os.environ.get("SLEEP_MS", "50")) / 1000
    for n in counts:
        started = time.perf_counter()
        cheap = registry(n, 0)
        build = (time.perf_counter() - started) * 1000
        cheap_med, cheap_min = await time_runs(cheap, runs)
        slow_med, slow_min = await time_runs(registry(n, sleep_s), runs)
        print(
            f"FASTAPI_WATCH probes={n} build_ms={build:.3f} cheap_ms={cheap_med:.3f} "
            f"cheap_min_ms={cheap_min:.3f} slow_ms={slow_med:.3f} slow_min_ms={slow_min:.3f}",
            flush=True,
        )


if __name__ == "__main__":
    asyncio.run(main())
