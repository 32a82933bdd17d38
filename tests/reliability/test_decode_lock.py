"""Two `asr decode` into one --out: while the first runs, the second is refused in one line
naming the folder and the first's pid, and changes nothing; the first then finishes as if alone,
and once it is done the folder can be decoded into again."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from reliability_kit import HERE, asr, assert_one_line_error, snapshot


def test_a_second_decode_into_a_busy_output_folder_is_refused(world, tmp_path):
    out = tmp_path / "d"
    args = ["decode", "--exp", world.exp, "--manifest", world.test_manifest, "--out", out, "--method", "ctc_greedy"]
    assert asr(*args).exit_code == 0
    earlier = snapshot(out)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path.cwd()), *sys.path]), "OMP_NUM_THREADS": "1",
           "NO_COLOR": "1", "ASR_TEST_KILL_ON": "hyp.txt", "ASR_TEST_SIGNAL": "SIGSTOP"}  # fmt: skip
    first = subprocess.Popen([sys.executable, str(HERE / "driver.py"), *map(str, args)], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        _, status = os.waitpid(first.pid, os.WUNTRACED)  # stopped while writing its hyp.txt aside
        assert os.WIFSTOPPED(status), status
        second = asr(*args, "--method", "attention_greedy")
        assert_one_line_error(second, f"{out} is in use by pid {first.pid} on host {socket.gethostname()}", "another --out")
        assert snapshot(out) == earlier
        os.kill(first.pid, signal.SIGCONT)
        _, stderr = first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert first.returncode == 0, stderr
    assert '"method": "ctc_greedy"' in (out / "timing.json").read_text()  # the first's output, whole
    assert asr(*args).exit_code == 0  # free again
