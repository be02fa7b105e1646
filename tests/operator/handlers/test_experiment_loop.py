"""The shared parts of the Experiment daemons (`handlers.experiment.Loop`): blocking work on the
loop's own threads, and wake-ups by ModelDeployment that are never lost."""

from __future__ import annotations

import asyncio
import threading
import time

from modelpilot.operator.handlers import experiment


def test_blocking_work_runs_on_the_loops_own_threads_with_the_callers_context() -> None:
    async def main() -> tuple[str, int]:
        loop = experiment.Loop()
        try:
            return await loop.call(lambda: threading.current_thread().name), await loop.call(
                sum, [1, 2, 3]
            )
        finally:
            loop.executor.shutdown(wait=True)

    thread, total = asyncio.run(main())
    assert thread.startswith("experiment")
    assert total == 6


def test_thirty_waiting_daemons_hold_no_thread() -> None:
    async def main() -> int:
        loop = experiment.Loop()
        before = threading.active_count()
        waiters = [
            asyncio.create_task(loop.wait_change("ns", f"md-{i}", seen=0, timeout=30))
            for i in range(30)
        ]
        await asyncio.sleep(0)  # every waiter is now parked on its condition
        during = threading.active_count()
        for i in range(30):
            await loop.changed("ns", f"md-{i}")
        await asyncio.wait_for(asyncio.gather(*waiters), timeout=5)
        loop.executor.shutdown(wait=True)
        return during - before

    assert asyncio.run(main()) == 0


def test_a_change_wakes_the_daemons_of_that_deployment_only() -> None:
    async def main() -> tuple[bool, bool]:
        loop = experiment.Loop()
        iris = asyncio.create_task(loop.wait_change("ns", "iris", seen=0, timeout=30))
        other = asyncio.create_task(loop.wait_change("ns", "other", seen=0, timeout=30))
        await asyncio.sleep(0)
        await loop.changed("ns", "iris")
        await asyncio.wait_for(iris, timeout=5)
        woken_other = other.done()
        other.cancel()
        loop.executor.shutdown(wait=True)
        return iris.done(), woken_other

    assert asyncio.run(main()) == (True, False)


def test_a_change_between_looking_and_waiting_is_not_lost() -> None:
    async def main() -> float:
        loop = experiment.Loop()
        seen = loop.version("ns", "iris")
        await loop.changed("ns", "iris")  # while the daemon was busy with its pass
        started = time.monotonic()
        await loop.wait_change("ns", "iris", seen=seen, timeout=30)
        loop.executor.shutdown(wait=True)
        return time.monotonic() - started

    assert asyncio.run(main()) < 1.0
