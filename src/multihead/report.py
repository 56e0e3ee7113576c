"""`python -m multihead.report MULTIRUN_DIR`: the comparison report of a finished sweep.

Also the public API for notebooks and scripts: `load_runs(dir)` (one row per job),
`load_run(job_dir)` and `build_report(dir)`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from multihead.errors import USAGE_EXIT_CODE, print_error
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
        help="Holm-adjusted p-value below which a difference is clear",
    )
    parser.add_argument(
        "--no-baselines",
        action="store_true",
        help="skip the majority-class and logistic-regression rows",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
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
    if len(comparisons):
        for sentence in comparisons.loc[
            comparisons["verdict"].isin(["better", "worse"]), "sentence"
        ]:
            print(f"  {sentence}")
    for note in report.notes:
        print(f"note: {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
