"""Read ahead on a thread: a source's next items are fetched while its consumer (a target's write) works."""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")


def close_producer(stream: object) -> None:
    """Stop a producer that will not be drained (a range already done), so its query and thread end now."""
    close = getattr(stream, "close", None)
    if callable(close):
        close()


def read_ahead(items: Iterable[T], depth: int, name: str = "read-ahead") -> Iterator[T]:
    """`items`, pulled on a thread named `name` up to `depth` ahead of the consumer.

    An error of the producer is raised to the consumer where the item would have been. When the consumer stops
    (it is closed, or it raises) the thread stops pulling and closes `items`; the consumer returns once it has.
    """
    slots: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def pull() -> None:
        try:
            for item in items:
                if stop.is_set():
                    break
                slots.put(("item", item))
            slots.put(("end", None))
        except BaseException as exc:  # handed to the consumer, which raises it
            slots.put(("error", exc))
        finally:
            close_producer(items)

    worker = threading.Thread(target=pull, name=name, daemon=True)
    worker.start()
    try:
        while True:
            kind, value = slots.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()
        while worker.is_alive():
            with contextlib.suppress(queue.Empty):
                slots.get(timeout=0.05)
        worker.join()
