"""Celery with the Redis broker, a no-op task (results ignored, acks late like our pool).

Worker: ``celery -A celery_peer worker --pool P -c C ...`` (the runner starts it).
Producer: ``python celery_peer.py`` speaks bench/peers/_proto.py.
Env: BENCH_REDIS_URL, BENCH_PREFETCH (worker_prefetch_multiplier).
"""

from __future__ import annotations

import os

import _proto
from celery import Celery

app = Celery("bench", broker=os.environ["BENCH_REDIS_URL"])
app.conf.update(
    task_ignore_result=True,
    task_acks_late=True,  # ack after the task ran: the delivery contract our pool has
    worker_prefetch_multiplier=int(os.environ.get("BENCH_PREFETCH", "4")),
    task_default_queue="bench_celery",
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
    worker_send_task_events=False,
)


@app.task(name="noop")
def noop() -> None:
    return None


def _enqueue(n: int) -> None:
    with app.producer_or_acquire() as producer:
        for _ in range(n):
            noop.apply_async(producer=producer)


def main() -> None:
    _proto.serve_sync(_enqueue)


if __name__ == "__main__":
    main()
