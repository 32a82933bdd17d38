"""Where a search's time goes: torch.profiler over one decode of decode_speed.py's workload.

Prints the top operators by self CPU (or CUDA) time, and the time of each part of the search
(decoder step, CTC prefix scores, CTC forward variables, the pre-beam top-k, ...): the parts are
marked by wrapping the search's functions in ``record_function`` here, so the package itself
carries no profiling code.

Usage: .venv/bin/python bench/decode_profile.py [--config configs/transformer_100h.yaml]
       [--method joint_beam] [--batch 16] [--steps 60 | --tokens-per-second 3] [--seconds 10]
       [--beam 10] [--ctc-weight 0.3] [--device cpu] [--threads N] [--top 25]
"""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile, record_function

sys.path.insert(0, str(Path(__file__).parent))
import machine  # noqa: E402
from decode_speed import CONFIGS, make_workload  # noqa: E402

from asr import cpu  # noqa: E402
from asr.config import load_config  # noqa: E402
from asr.decode import beam, ctc_prefix, rescore, scorers  # noqa: E402
from asr.decode.options import DecodeOptions  # noqa: E402
from asr.model import ASRModel  # noqa: E402

PARTS = (  # (owner, attribute, label): what is wrapped in record_function
    (scorers.DecoderScorer, "score", "decoder step (score)"),
    (scorers.DecoderScorer, "select", "decoder cache reorder (select)"),
    (ctc_prefix.CTCPrefixScorer, "extend", "CTC prefix scores of candidates"),
    (ctc_prefix.CTCPrefixScorer, "score_eos", "CTC <eos> score"),
    (ctc_prefix.CTCPrefixScorer, "select", "CTC forward variables (select)"),
    (ctc_prefix.CTCPrefixScorer, "init", "CTC init"),
    (beam, "_score", "all scoring incl. pre-beam top-k"),
    (beam, "_keep_best", "keep best (sort)"),
    (beam.Finished, "add", "finished merge"),
    (beam, "_done", "end rules"),
    (beam.Beams, "grow", "tokens grow"),
    (rescore, "ctc_prefix_beam_search_batch", "CTC prefix beam (rescoring)"),
    (rescore, "teacher_forced_log_probs", "decoder teacher-forced (rescoring)"),
    (rescore, "batched_sequence_log_probs", "exact CTC (rescoring)"),
)


def instrument() -> list[str]:
    """Wrap each part's function in a record_function of its label; return the labels."""

    def wrap(fn, label):
        @functools.wraps(fn)
        def wrapped(*args, **kwargs):
            with record_function(label):
                return fn(*args, **kwargs)

        return wrapped

    for owner, name, label in PARTS:
        setattr(owner, name, wrap(getattr(owner, name), label))
    return [label for _, _, label in PARTS]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=CONFIGS / "transformer_100h.yaml")
    parser.add_argument("--vocab", type=int, default=5000)
    parser.add_argument("--method", default="joint_beam")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--beam", type=int, default=10)
    parser.add_argument("--ctc-weight", type=float, default=0.3)
    parser.add_argument("--tokens-per-second", type=float, default=3.0)
    parser.add_argument("--steps", type=int, help="the peer workload (see decode_speed.py)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--shapes", action="store_true", help="also list the top operators by input shape")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    cpu.keep_freed_memory()  # as `asr decode` does (and bench/decode_speed.py by default)
    device = torch.device(args.device)
    torch.manual_seed(args.seed)
    model = ASRModel(load_config(args.config), args.vocab).to(device).eval()
    work, ratio, _ = make_workload(model, args, args.batch, device)
    options = DecodeOptions(
        method=args.method, beam=args.beam, ctc_weight=args.ctc_weight, length_norm=not args.steps,
        max_length_ratio=ratio, batch_size=args.batch,
    )  # fmt: skip
    labels = instrument()
    work(options)  # warm-up
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities, record_shapes=args.shapes) as prof:
        with record_function("total"):
            work(options)
        machine.synchronize(device)
    info = machine.describe(device)
    print(f"{args.method}, {args.config.stem}, batch {args.batch} x {args.seconds:g} s, beam {args.beam}, "
          f"{'peer workload, %d steps' % args.steps if args.steps else 'calibrated workload'}; "
          f"{info.get('gpu', info['cpu'])} ({info['cpu_capability']}), {info['threads']} threads")  # fmt: skip
    sort = "self_device_time_total" if device.type == "cuda" else "self_cpu_time_total"
    events = prof.key_averages()
    print(events.table(sort_by=sort, row_limit=args.top))
    if args.shapes:
        print(prof.key_averages(group_by_input_shape=True).table(sort_by=sort, row_limit=args.top))
    total = next(e.cpu_time_total for e in events if e.key == "total")
    print(f"parts (inclusive CPU time; nested parts are inside 'all scoring'), total {total / 1e6:.3f} s:")
    for event in sorted((e for e in events if e.key in labels), key=lambda e: -e.cpu_time_total):
        print(f"  {event.key:40s} {event.cpu_time_total / 1e6:8.3f} s {100 * event.cpu_time_total / total:5.1f}%"
              f"  {event.count:5d} calls")  # fmt: skip


if __name__ == "__main__":
    main()
