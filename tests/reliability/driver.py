"""Run the `asr` command line in a subprocess, optionally killing itself (SIGKILL) in the middle
of a write: ``ASR_TEST_KILL_ON=NAME`` kills the process once the temporary file of a target whose
name contains NAME is written and flushed, just before it would be renamed into place (the
moment a crash would tear a file written in place). ``ASR_TEST_SIGNAL=SIGSTOP`` (or another
name) sends that signal instead: a stopped process waits there for the test's own signals.

    python tests/reliability/driver.py decode --exp ... (same arguments as `asr`)
"""

import os
import signal
import sys

import asr.files
from asr.cli import app

target = os.environ.get("ASR_TEST_KILL_ON")
chosen = getattr(signal, os.environ.get("ASR_TEST_SIGNAL", "SIGKILL"))
if target:
    original = asr.files._fsync

    def _fsync_then_die(path):
        original(path)
        if target in path.name:
            os.kill(os.getpid(), chosen)

    asr.files._fsync = _fsync_then_die

sys.argv[0] = "asr"
app()
