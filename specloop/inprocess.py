"""Running a job without a broker: in a thread of this process, or inline when TRAINING_INPROCESS=sync."""

import threading
from collections.abc import Callable

from django.conf import settings
from django.db import connection


def run_in_process(fn: Callable[[], None], *, name: str) -> None:
    """Call ``fn`` inline ("sync") or in a daemon thread that closes its database connection when done."""
    if settings.TRAINING_INPROCESS == "sync":
        fn()
        return

    def run() -> None:
        try:
            fn()
        finally:
            connection.close()

    threading.Thread(target=run, name=name, daemon=True).start()
