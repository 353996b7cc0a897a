"""``python -m lab.db.reaper``: stops the embedded PostgreSQL when no lab process needs it."""

import os
import signal
import sys

from .embedded import reap_forever

if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    reap_forever(float(os.environ.get("LAB_PG_IDLE_SECONDS", "20")))
