"""`python -m multihead.report MULTIRUN_DIR`: the comparison report of a finished sweep.

Also the public API for notebooks and scripts: `load_runs(dir)` (one row per job),
`load_run(job_dir)` and `build_report(dir)`.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from multihead.errors import USAGE_EXIT_CODE, print_error
from multihead.explain import explanation_section
from multihead.metrics.names import ROPE
from multihead.reporting.document import Report, build_report
from multihead.reporting.runs import load_runs
from multihead.reporting.statistics import ALPHA, DEFAULT_REFERENCE
from multihead.run_folder import OK, load_run

__all__ = ["Report", "build_report", "load_run", "load_runs", "main"]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m multihead.report",
        description="Compare the variants of a sweep (python train.py -m ...) from the files "
        "its jobs wrote: report.md, summary.csv, comparisons.csv, jobs.csv, plots/.",
    )
    parser.add_argument("sweep_dir", type=Path, help="the sweep folder (hydra.sweep.dir)")
    parser.add_argument(
        "--reference",
        default=DEFAULT_REFERENCE,
        help="variant the others are compared with (default: %(default)s)",
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="where to write (default: the sweep folder)"
    )
    parser.add_argument(
        "--alpha",
        type=float,
        default=ALPHA,
        help="Holm-adjusted p-value below which a difference is clear; intervals are 1 - alpha",
    )
    parser.add_argument(
        "--rope",
        action="append",
        default=[],
        metavar="METRIC=WIDTH",
        help="region of practical equivalence of a metric, e.g. --rope mae_years=0.5 "
        f"(defaults: {', '.join(f'{k}={v:g}' for k, v in ROPE.items())})",
    )
    parser.add_argument(
        "--no-baselines",
        action="store_true",
        help="skip the reference models (majority class, logistic and ridge regression)",
    )
    return parser.parse_args(argv)


def parse_rope(items: list[str]) -> dict[str, float]:
    """`["mae_years=0.5"]` -> {"mae_years": 0.5}; a bad item raises ValueError naming it."""
    out = {}
    for item in items:
        metric, _, width = item.partition("=")
        try:
            value = float(width)
        except ValueError:
            value = math.nan
        if metric not in ROPE or not math.isfinite(value) or value < 0:
            raise ValueError(
                f"--rope {item!r}: give METRIC=WIDTH with a width >= 0 and one of {sorted(ROPE)}"
            )
        out[metric] = value
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        rope = parse_rope(args.rope)
    except ValueError as err:
        print_error(str(err))
        return USAGE_EXIT_CODE
    if not 0 < args.alpha < 1:
        print_error(f"--alpha must be between 0 and 1, got {args.alpha}")
        return USAGE_EXIT_CODE
    if not args.sweep_dir.is_dir():
        print_error(
            f"no sweep folder at {args.sweep_dir}: run a sweep first, e.g. "
            "`python train.py -m head=fused,split loss=bce,ce`, then give its folder "
            "(outputs/multirun/DATE)"
        )
        return USAGE_EXIT_CODE
    try:
        report = build_report(
            args.sweep_dir,
            reference=args.reference,
            out_dir=args.out,
            baselines=not args.no_baselines,
            alpha=args.alpha,
            rope=rope,
            explanations=explanation_section,
        )
    except FileNotFoundError as err:
        print_error(str(err))
        return USAGE_EXIT_CODE
    runs, comparisons = report.runs, report.comparisons
    done = int((runs["status"] == OK).sum())
    variants = runs.loc[runs["status"] == OK, "variant"].nunique()
    print(f"report: {report.markdown_path}")
    print(
        f"{done} of {len(runs)} jobs finished; {variants} variants compared with {report.reference}"
    )
    print()
    for sentence in report.verdict:
        print(sentence)
    print()
    if len(comparisons):
        clear = comparisons[
            (comparisons["family"] == "primary")
            & comparisons["verdict"].isin(["better", "worse", "practically equal"])
        ]
        for sentence in clear["sentence"]:
            print(f"  {sentence}")
    for note in report.notes:
        print(f"note: {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
