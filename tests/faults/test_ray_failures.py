"""Every way Ray can fail a task ends in one line naming what failed and why: real tasks on the session's real Ray,
failed for real (a worker that dies, a cancelled task, an actor killed under a task, a result whose owner died),
through run_bounded as the pipeline and verify call it. And the one backoff policy for lost connections."""

from __future__ import annotations

import os
import threading
import time
from typing import Any

import pytest
import ray

from ray_replicator.engines.base import EngineError
from ray_replicator.retry import ATTEMPTS, BACKOFF_WAITS, GaveUp, TransientError, is_transient, retrying
from ray_replicator.schedule import SYSTEM_RETRIES, describe_failure, run_bounded


@ray.remote(max_retries=SYSTEM_RETRIES, retry_exceptions=False)
def _raises(kind: str) -> int:
    if kind == "bug":
        raise KeyError("Body")
    if kind == "engine":
        raise EngineError('writing public.t#2: value too long for type character varying(4) (column "v")')
    raise TransientError("connection refused")


@ray.remote(max_retries=SYSTEM_RETRIES, retry_exceptions=False)
def _dies() -> int:
    os._exit(9)


@ray.remote(max_retries=0)
def _sleeps(seconds: float) -> int:
    time.sleep(seconds)
    return 1


@ray.remote(num_cpus=0)
class _Helper:
    def ping(self) -> int:
        return 1

    def pid(self) -> int:
        return os.getpid()

    def make(self) -> list[ray.ObjectRef]:
        return [ray.put(b"x" * 2_000_000)]  # in the object store, owned by this actor


@ray.remote(max_retries=0)
def _uses(helper: Any) -> int:
    time.sleep(1.5)
    return int(ray.get(helper.ping.remote()))


def _fail_one(submit: Any, name: str = "range public.t#2") -> str:
    with pytest.raises(EngineError) as failed:
        run_bounded(["item"], submit, 1, lambda _item, _result: None, name=lambda _item: name)
    message = str(failed.value)
    assert "\n" not in message and "\x1b[" not in message and "ray::" not in message, message
    return message


def test_a_bug_in_a_task_is_its_type_and_message(ray_local: None) -> None:
    message = _fail_one(lambda _item: _raises.remote("bug"))
    assert message == "range public.t#2 failed: KeyError: 'Body'"


def test_an_engine_error_is_passed_on_as_it_is(ray_local: None) -> None:
    message = _fail_one(lambda _item: _raises.remote("engine"))
    assert message == 'writing public.t#2: value too long for type character varying(4) (column "v")'


def test_a_worker_that_dies_every_time(ray_local: None) -> None:
    message = _fail_one(lambda _item: _dies.remote())
    assert message.startswith(
        f"range public.t#2 failed after {SYSTEM_RETRIES + 1} attempts: the worker process died (killed, out of "
        "memory or crashed); worker logs in "
    ), message


def test_a_cancelled_task(ray_local: None) -> None:
    def submit(_item: str) -> ray.ObjectRef:
        ref = _sleeps.remote(30)
        threading.Timer(1.0, lambda: ray.cancel(ref, force=True)).start()
        return ref

    message = _fail_one(submit)
    assert message.startswith("range public.t#2 failed"), message
    assert "the task was cancelled" in message or "the worker process died" in message, message


def test_an_actor_killed_under_a_task(ray_local: None) -> None:
    helper = _Helper.remote()  # type: ignore[attr-defined]
    ray.get(helper.ping.remote())

    def submit(_item: str) -> ray.ObjectRef:
        ref = _uses.remote(helper)
        threading.Timer(0.3, lambda: ray.kill(helper)).start()
        return ref

    assert _fail_one(submit) == "range public.t#2 failed: a Ray actor it used (_Helper) died" + _logs_suffix()


def test_a_result_whose_owner_died(ray_local: None) -> None:
    helper = _Helper.remote()  # type: ignore[attr-defined]

    def submit(_item: str) -> ray.ObjectRef:
        [inner] = ray.get(helper.make.remote())
        ray.kill(helper)
        time.sleep(1.0)
        return inner

    message = _fail_one(submit)
    assert message == "range public.t#2 failed: Ray lost its result (the node or process holding it died)" + (
        _logs_suffix()
    )


def test_node_death_and_memory_kills_are_worded(ray_local: None) -> None:
    """Ray raises these only when a node dies or its memory monitor kills; the words for them, from Ray's own
    exception classes."""
    died = ray.exceptions.NodeDiedError("node 1234 died")
    assert describe_failure(died) == "the Ray node running it died" + _logs_suffix()
    oom = ray.exceptions.OutOfMemoryError("1 worker(s) were killed due to the node running low on memory")
    assert describe_failure(oom).startswith("Ray's memory monitor killed the worker because the node ran low")


def test_lost_connections_are_tried_again_after_growing_waits(ray_local: None) -> None:
    """A task that loses its connection is submitted again (with the waits of the policy), its siblings go on."""
    tries: list[float] = []
    results: list[int] = []

    def submit(item: str) -> ray.ObjectRef:
        if item == "flaky":
            tries.append(time.monotonic())
            return _raises.remote("lost") if len(tries) < 3 else _sleeps.remote(0)
        return _sleeps.remote(0)

    run_bounded(["flaky", "steady"], submit, 2, lambda _item, result: results.append(result))
    assert results == [1, 1] and len(tries) == 3
    assert tries[1] - tries[0] >= BACKOFF_WAITS[0] and tries[2] - tries[1] >= BACKOFF_WAITS[1]


def _logs_suffix() -> str:
    node = ray._private.worker._global_node
    return f"; worker logs in {node.get_logs_dir_path()}"


def test_the_backoff_policy_rides_out_about_90_seconds() -> None:
    waited: list[float] = []
    calls = []

    def lost() -> None:
        calls.append(1)
        raise EngineError("finalizing public.t on postgresql://u@h/db: connection refused")

    with pytest.raises(GaveUp) as gave_up:
        retrying("finalizing public.t", lost, sleep=waited.append)
    assert len(calls) == ATTEMPTS and waited == list(BACKOFF_WAITS) and 85 <= sum(waited) <= 95
    assert str(gave_up.value) == (
        f"finalizing public.t failed after {ATTEMPTS} attempts over ~90 s: "
        "finalizing public.t on postgresql://u@h/db: connection refused"
    )

    flaky = iter([ConnectionResetError("connection reset by peer"), None])

    def once_lost() -> str:
        error = next(flaky)
        if error is not None:
            raise error
        return "ok"

    assert retrying("adding foreign keys", once_lost, sleep=waited.append) == "ok"

    def data_error() -> None:
        raise EngineError('adding foreign key fk to public.c: insert or update violates foreign key "fk"')

    waited.clear()
    with pytest.raises(EngineError, match="violates foreign key"):
        retrying("adding foreign keys", data_error, sleep=waited.append)
    assert waited == []
    assert not is_transient(EngineError("connection to server failed: password authentication failed"))
