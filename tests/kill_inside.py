"""`python tests/kill_inside.py WHERE N th1nker-args...`: run the th1nker CLI and kill -9 the
process itself at the N-th checkpoint (WHERE=checkpoint: its files are complete in the temporary
directory, not yet renamed into place) or in the middle of the N-th metrics record
(WHERE=metrics: half the line is on disk). A real SIGKILL at an exact moment, for the fault tests.
"""

import json
import os
import signal
import sys

from th1nker.cli import main
from th1nker.train import metrics, storage

where, at = sys.argv[1], int(sys.argv[2])
calls = 0


def due() -> bool:
    global calls
    calls += 1
    return calls == at


if where == "checkpoint":
    complete = storage.write_checksums

    def write_checksums_then_die(directory):
        complete(directory)
        if due():
            os.kill(os.getpid(), signal.SIGKILL)

    storage.write_checksums = write_checksums_then_die  # replace_directory's call
elif where == "metrics":
    whole = metrics.MetricsLog.write

    def write_half_then_die(self, record):
        if due():
            self.file.write(json.dumps(record)[:25])
            self.file.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        whole(self, record)

    metrics.MetricsLog.write = write_half_then_die
else:
    raise SystemExit(f"WHERE must be checkpoint or metrics, got {where!r}")

sys.argv = ["th1nker", *sys.argv[3:]]
main()
