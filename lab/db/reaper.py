"""``python -m lab.db.reaper HOME``: stops the embedded PostgreSQL in HOME when no lab
process needs it. HOME is on the command line so that a reaper can be recognised."""

import os
import signal
import sys

from .embedded import idle_seconds, reap_forever

if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ["LAB_HOME"] = sys.argv[1]
    reap_forever(idle_seconds())
