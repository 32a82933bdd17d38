"""Two nodes simulated on one machine: `torchrun --nnodes 2` twice on 127.0.0.1 (gloo, one
process per node). Training runs and keeps the ranks identical; a killed or hung rank ends every
rank in bounded time (train.dist_timeout); the checkpoint resumes on one process."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from rich.console import Console

from asr.config import load_config
from asr.data.batching import DurationBatchSampler
from asr.data.manifest import read_manifest
from asr.train.loop import train

from toy import toy_overrides

HERE = Path(__file__).parent
ROOT = HERE.parents[1]
BOUND = 60.0  # seconds in which every rank must have ended after one died


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_nodes(tmp_path: Path, overrides: list[str]) -> list[subprocess.Popen]:
    port, out = _free_port(), tmp_path / "params"
    out.mkdir(exist_ok=True)
    nodes = []
    for node in (0, 1):
        command = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--node-rank", str(node),
                   "--nproc-per-node", "1", "--master-addr", "127.0.0.1", "--master-port", str(port),
                   str(HERE / "ddp_worker.py"), "configs/tiny.yaml", str(tmp_path / "exp"), str(out), *overrides]  # fmt: skip
        log = open(tmp_path / f"node{node}.log", "w")
        nodes.append(subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
    return nodes


def _output(tmp_path: Path, node: int) -> str:
    return (tmp_path / f"node{node}.log").read_text()[-3000:]


def _worker_pid(agent: subprocess.Popen) -> int:
    """The training process torchrun started on this node."""
    for child in Path(f"/proc/{agent.pid}/task/{agent.pid}/children").read_text().split():
        if b"ddp_worker.py" in Path(f"/proc/{child}/cmdline").read_bytes():
            return int(child)
    raise AssertionError("no worker process under torchrun")


def _wait_for_step(tmp_path: Path, nodes: list[subprocess.Popen], step: int) -> None:
    log, deadline = tmp_path / "exp" / "log.jsonl", time.time() + 240
    while time.time() < deadline:
        assert all(node.poll() is None for node in nodes), _output(tmp_path, 0) + _output(tmp_path, 1)
        if log.is_file() and any(f'"step": {step},' in line and '"train"' in line for line in log.read_text().splitlines()):
            return
        time.sleep(0.2)
    raise AssertionError(f"step {step} never logged")


def _end_all(nodes: list[subprocess.Popen]) -> None:
    """Kill every node's process group, also where torchrun has exited: a SIGSTOPped worker
    outlives it and would stay behind, stopped, holding the test run's pipes."""
    for node in nodes:
        try:
            os.killpg(node.pid, signal.SIGKILL)
        except ProcessLookupError:  # the whole group has ended
            pass
        node.wait()


@pytest.mark.slow
def test_two_nodes_train_in_step_and_the_checkpoint_resumes_on_one_process(toy_corpus, tmp_path):
    # train.gpus=2: on two ranks each takes 4 s micro-batches; one process accumulates two of them
    # per update, so it has about twice as many batches per epoch to count the resume point in.
    overrides = toy_overrides(toy_corpus, "train.max_steps=3", "train.checkpoint_every=3", "train.gpus=2")
    nodes = _start_nodes(tmp_path, overrides)
    try:
        for node in nodes:
            node.wait(timeout=300)
    finally:
        _end_all(nodes)
    assert [node.returncode for node in nodes] == [0, 0], _output(tmp_path, 0) + _output(tmp_path, 1)
    rank0, rank1 = (torch.load(tmp_path / "params" / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    last = torch.load(tmp_path / "exp" / "checkpoints" / "last.pt", weights_only=True)
    assert all(torch.equal(value, rank1[name]) and torch.equal(value, last["model"][name]) for name, value in rank0.items())
    assert (last["position"]["step"], last["position"]["world_size"], last["position"]["batch_in_epoch"]) == (3, 2, 3)
    assert len(last["rank_rng"]) == 2

    config = load_config("configs/tiny.yaml", toy_overrides(toy_corpus, "train.max_steps=5", "train.gpus=2"))
    summary = train(config, tmp_path / "exp", device="cpu", console=Console(quiet=True))
    assert summary.steps == 5
    durations = [u.duration for u in read_manifest(toy_corpus["manifest"])]
    on_two = len(DurationBatchSampler(durations, 4.0, seed=1234, world_size=2, bucket_size=8).epoch_batches(0)) // 2
    on_one = len(DurationBatchSampler(durations, 4.0, seed=1234, bucket_size=8).epoch_batches(0))
    starts = [json.loads(line) for line in (tmp_path / "exp" / "log.jsonl").read_text().splitlines() if '"start"' in line]
    assert starts[-1]["resumed"] and starts[-1]["batch_in_epoch"] == round(3 * on_one / on_two) > 3


@pytest.mark.slow
@pytest.mark.parametrize("how", ["killed", "hung"])
def test_a_dead_or_hung_rank_ends_every_rank_in_bounded_time(toy_corpus, tmp_path, how):
    """Killed: its sockets close and the other rank's collective fails at once. Hung (SIGSTOP,
    as a node that stops answering): only train.dist_timeout ends the other rank's wait (gloo's
    own default is 30 minutes). The hung process itself is left to the scheduler (srun ends a
    job step when one task fails), so there only the live node is timed."""
    overrides = toy_overrides(toy_corpus, "train.epochs=10000", "train.checkpoint_every=0", "train.dist_timeout=10")
    nodes = _start_nodes(tmp_path, overrides)
    victim = None
    try:
        _wait_for_step(tmp_path, nodes, 2)
        victim = _worker_pid(nodes[1])
        os.kill(victim, signal.SIGKILL if how == "killed" else signal.SIGSTOP)
        start = time.time()
        watched = nodes if how == "killed" else nodes[:1]
        for node in watched:
            node.wait(timeout=BOUND + 30)
        elapsed = time.time() - start
    finally:
        _end_all(nodes)
        if victim is not None:  # a stopped worker may sit outside torchrun's process group
            try:
                os.kill(victim, signal.SIGKILL)
            except ProcessLookupError:
                pass
    assert elapsed < BOUND, f"ranks ended {elapsed:.0f} s after one {how}"
    assert all(node.returncode != 0 for node in watched)
