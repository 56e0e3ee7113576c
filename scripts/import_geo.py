"""Convert a downloaded GEO series matrix into an .h5ad cohort that `data=anndata` trains on.

    python scripts/import_geo.py GSE40279_series_matrix.txt.gz --out cohort.h5ad
    python train.py data=anndata data.path=cohort.h5ad data.labels.missing=mask

Age and sex are parsed from the `!Sample_characteristics_ch1` lines (`age: 67`,
`age (y): 67.5`, `gender: F`, `Sex: male`, ...); the samples whose age or sex could not be
read are listed with their raw text, and keep a missing label in `.obs`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console

from multihead.data.geo_series import parse_labels, read_series_matrix, to_anndata
from multihead.errors import MultiheadError


def report(console: Console, labels, n_samples: int, limit: int) -> None:
    """How many ages and sexes were read, from which field, and the first unread samples."""
    for label in ("age", "sex"):
        failed = labels.unparsed[label]
        keys = labels.keys[label]
        field = f"fields {', '.join(map(repr, keys))}" if keys else "no matching field"
        console.print(f"{label}: parsed {n_samples - len(failed)} of {n_samples} ({field})")
        for sample, raw in failed[:limit]:
            console.print(f"  not parsed: {sample}: {raw!r}")
        if len(failed) > limit:
            console.print(f"  ... and {len(failed) - limit} more")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("series_matrix", type=Path, help="*_series_matrix.txt(.gz) file")
    parser.add_argument("--out", type=Path, required=True, help="the .h5ad file to write")
    parser.add_argument("--show", type=int, default=10, help="unparsed samples listed per label")
    args = parser.parse_args(argv)
    console = Console()
    try:
        matrix = read_series_matrix(args.series_matrix)
    except MultiheadError as err:
        console.print(f"[red]error:[/red] {err}")
        return 1
    labels = parse_labels(matrix.samples)
    adata = to_anndata(matrix, labels)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    adata.write_h5ad(args.out)
    console.print(
        f"{len(matrix.sample_ids)} samples x {len(matrix.feature_names)} features -> {args.out}"
    )
    report(console, labels, len(matrix.sample_ids), args.show)
    return 0


if __name__ == "__main__":
    sys.exit(main())
