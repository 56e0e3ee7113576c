"""Load time and peak memory of `data=table` / `data=anndata` next to the plain baseline.

    python scripts/benchmark_data.py                       # small: about a minute on 2 cores
    python scripts/benchmark_data.py --dense 20000x20000 --sparse 200000x20000 --format csv

Cases (each measured in a fresh process, so peak resident memory is that process's own):
  dense   a samples x features float32 matrix (CSV, Parquet or .h5ad) + sample sheet
          baseline: pandas.read_csv / read_parquet / anndata.read_h5ad, then numpy float32
  sparse  an .h5ad with a CSR matrix at --density
          baseline: anndata.read_h5ad, then X.toarray() (read only when that would not fit)
"ours" is `prepare_cohort` (load, label, split, preprocess) and then one training epoch with
the default model; its load time and its peak memory are compared to the baseline's as
ratios, and its peak is also given as a multiple of the float32 matrix size.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MB = 1 << 20


def rss_now() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def rss_peak() -> int:
    """This process image's high-water mark (VmHWM). Not ru_maxrss: Linux carries that over
    exec from the forking parent, which here has just generated a multi-GB matrix."""
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


# ----------------------------------------------------------------------------- writing data
def labels(n: int, rng: np.random.Generator):
    """Sample sheet: id, age (18-90) and sex."""
    import pandas as pd

    return pd.DataFrame(
        {"age": rng.uniform(18, 90, n).round(1), "sex": rng.choice(["female", "male"], n)},
        index=pd.Index([f"S{i:07d}" for i in range(n)], name="sample_id"),
    )


def write_dense(folder: Path, n: int, p: int, fmt: str, rng: np.random.Generator) -> Path:
    """Written in row chunks, so generating a 1.6 GB matrix needs little memory."""
    import pandas as pd

    sheet = labels(n, rng)
    sheet.to_csv(folder / "samples.csv")
    ids = sheet.index.to_numpy()
    names = [f"G{j:06d}" for j in range(p)]
    step = max(1, (64 * MB) // (4 * p))
    path = folder / {"csv": "dense.csv", "parquet": "dense.parquet", "h5ad": "dense.h5ad"}[fmt]
    if fmt == "h5ad":
        import anndata
        import h5py
        import pandas as pd

        anndata.AnnData(obs=sheet, var=pd.DataFrame(index=pd.Index(names))).write_h5ad(path)
        with h5py.File(path, "a") as handle:
            x = handle.create_dataset("X", shape=(n, p), dtype="float32", chunks=(min(n, 256), p))
            x.attrs["encoding-type"], x.attrs["encoding-version"] = "array", "0.2.0"
            for start in range(0, n, step):
                x[start : start + step] = rng.normal(5, 2, (min(step, n - start), p))
        return path
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    writer = None
    for start in range(0, n, step):
        block = rng.normal(5, 2, (min(step, n - start), p)).round(3).astype(np.float32)
        table = pa.Table.from_arrays(
            [pa.array(ids[start : start + step]), *[pa.array(block[:, j]) for j in range(p)]],
            names=["sample_id", *names],
        )
        if writer is None:  # pyarrow writers: pandas.to_csv takes minutes on wide files
            writer = (
                pacsv.CSVWriter(path, table.schema)
                if fmt == "csv"
                else pq.ParquetWriter(path, table.schema)
            )
        writer.write_table(table)
    writer.close()
    return path


def write_sparse(folder: Path, n: int, p: int, density: float, rng: np.random.Generator) -> Path:
    import anndata
    import pandas as pd
    import scipy.sparse as sp

    per_row = max(1, int(round(density * p)))
    stride = p // per_row  # each row: every stride-th gene from a random offset
    indices = rng.integers(0, stride, n)[:, None] + np.arange(per_row)[None, :] * stride
    data = rng.poisson(3, n * per_row).astype(np.float32) + 1
    matrix = sp.csr_matrix(
        (
            data,
            indices.ravel().astype(np.int32),
            np.arange(0, n * per_row + 1, per_row, dtype=np.int64),
        ),
        shape=(n, p),
    )
    path = folder / "sparse.h5ad"
    anndata.AnnData(
        X=matrix, obs=labels(n, rng), var=pd.DataFrame(index=[f"G{j:06d}" for j in range(p)])
    ).write_h5ad(path)
    return path


# ----------------------------------------------------------------------------- measuring
def measure_baseline(path: Path, kind: str) -> dict:
    import pandas as pd

    if kind.startswith("h5ad"):
        import anndata
    start_rss, started = rss_now(), time.perf_counter()
    if kind == "csv":
        x = pd.read_csv(path, index_col=0).to_numpy(np.float32)
    elif kind == "parquet":
        x = pd.read_parquet(path).set_index("sample_id").to_numpy(np.float32)
    elif kind == "h5ad-read":  # the dense copy would not fit: reading alone
        x = anndata.read_h5ad(path).X
    else:
        adata = anndata.read_h5ad(path)
        x = adata.X.toarray() if hasattr(adata.X, "toarray") else np.asarray(adata.X, np.float32)
    return {
        "load_s": time.perf_counter() - started,
        "peak": rss_peak(),
        "imports": start_rss,
        "shape": list(x.shape),
    }


def measure_ours(path: Path, sheet: Path | None, workdir: Path, epochs: int) -> dict:
    from hydra import compose, initialize_config_dir

    from multihead.data.datamodule import prepare_cohort
    from multihead.training.builders import build_datamodule, build_module, build_trainer
    from multihead.training.job import quiet_lightning

    quiet_lightning()
    data = (
        ["data=anndata", f"data.path={path}"]
        if sheet is None
        else ["data=table", f"data.matrix={path}", f"data.samples={sheet}"]
    )
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(
            "train",
            overrides=[
                *data,
                "logger=none",
                f"trainer.max_epochs={epochs}",
                "callbacks.progress=null",
                "callbacks.early_stopping=null",
                "trainer.enable_progress_bar=false",
                "data.preprocess.drop_constant=false",
                f"paths.output_dir={workdir}",
            ],
        )
    start_rss, started = rss_now(), time.perf_counter()
    cohort = prepare_cohort(cfg.data)
    load_s, load_peak = time.perf_counter() - started, rss_peak()
    trained = time.perf_counter()
    trainer = build_trainer(cfg, workdir)
    trainer.fit(build_module(cfg, cohort, None), datamodule=build_datamodule(cfg, cohort))
    return {
        "load_s": load_s,
        "load_peak": load_peak,
        "train_s": time.perf_counter() - trained,
        "peak": rss_peak(),
        "imports": start_rss,
        "shape": list(cohort.features.shape),
        "stored": type(getattr(cohort.features, "matrix", cohort.features)).__name__,
    }


def run_measure(args: argparse.Namespace) -> None:
    """Child process: one measurement, printed as JSON on the last line."""
    path = Path(args.measure_path)
    if args.measure == "baseline":
        result = measure_baseline(path, args.measure_kind)
    else:
        sheet = Path(args.measure_sheet) if args.measure_sheet else None
        result = measure_ours(path, sheet, Path(args.workdir), args.epochs)
    print(json.dumps(result))


def child(args: argparse.Namespace, *extra: str) -> dict:
    """Run one measurement in a fresh process, stopped if its memory passes --max-rss-gb
    (the machine is shared: a baseline that needs 10x the matrix must not take it down)."""
    command = [
        sys.executable,
        __file__,
        "--workdir",
        str(args.workdir),
        "--epochs",
        str(args.epochs),
        "--max-rss-gb",
        str(args.max_rss_gb),
        *extra,
    ]
    cap = int(args.max_rss_gb * (1 << 30))
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        process = subprocess.Popen(command, stdout=out, stderr=err, text=True, cwd=ROOT)
        peak = 0
        while process.poll() is None:
            peak = max(peak, _rss_of(process.pid))
            if peak > cap:
                process.kill()
                process.wait()
                return {"failed": f"stopped at {peak / (1 << 30):.1f} GB RSS (--max-rss-gb)"}
            time.sleep(0.1)
        out.seek(0), err.seek(0)
        stdout, stderr = out.read(), err.read()
    if process.returncode != 0:
        reason = "killed (out of memory?)" if process.returncode < 0 else stderr[-2000:]
        return {"failed": f"exit {process.returncode}: {reason}"}
    return json.loads(stdout.strip().splitlines()[-1])


def _rss_of(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return 0


# ----------------------------------------------------------------------------- report
def rows_for(
    case: str, matrix_bytes: int, baseline: dict | None, ours: dict, baseline_name: str = "baseline"
) -> list[list[str]]:
    def mb(x: float) -> str:
        return f"{x / MB:,.0f}"

    rows = []
    if baseline is not None and "failed" in baseline:
        rows.append([case, baseline_name, baseline["failed"], "", "", "", "", "", ""])
        baseline = None
    elif baseline is not None:
        rows.append(
            [
                case,
                baseline_name,
                f"{baseline['load_s']:.2f}",
                "-",
                mb(baseline["peak"]),
                mb(baseline["peak"] - baseline["imports"]),
                f"{baseline['peak'] / matrix_bytes:.2f}",
                "",
                "",
            ]
        )
    if "failed" in ours:
        return [*rows, [case, "ours", ours["failed"], "", "", "", "", "", ""]]
    ratio_t = f"{ours['load_s'] / baseline['load_s']:.2f}" if baseline else "n/a"
    ratio_m = f"{ours['peak'] / baseline['peak']:.2f}" if baseline else "n/a"
    rows.append(
        [
            case,
            f"ours ({ours['stored']})",
            f"{ours['load_s']:.2f}",
            f"{ours['train_s']:.2f}",
            mb(ours["peak"]),
            mb(ours["peak"] - ours["imports"]),
            f"{ours['peak'] / matrix_bytes:.2f}",
            ratio_t,
            ratio_m,
        ]
    )
    return rows


def print_table(rows: list[list[str]], sizes: dict[str, str]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="data loading: ours vs plain baseline (each in a fresh process)")
    for name in (
        "case",
        "method",
        "load s",
        "1 epoch s",
        "peak RSS MB",
        "peak - imports MB",
        "peak / matrix",
        "load time ratio",
        "peak ratio",
    ):
        table.add_column(name, justify="left" if name in ("case", "method") else "right")
    for row in rows:
        table.add_row(*row)
    console = Console(width=max(120, Console().width))  # readable when piped to a file
    console.print(table)
    for case, text in sizes.items():
        console.print(f"{case}: {text}")
    console.print(
        "ratios are ours / baseline; 'peak / matrix' is peak RSS over the float32 "
        "dense matrix size (n x p x 4 bytes); ours includes torch and Lightning."
    )


def parse_size(text: str) -> tuple[int, int]:
    n, _, p = text.lower().partition("x")
    return int(n), int(p)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dense", default="2000x2000", help="samples x features of the dense case")
    parser.add_argument("--sparse", default="20000x2000", help="cells x genes of the sparse case")
    parser.add_argument("--density", type=float, default=0.05, help="non-zero share (sparse)")
    parser.add_argument(
        "--format",
        choices=["csv", "parquet", "h5ad"],
        default="csv",
        help="file format of the dense case",
    )
    parser.add_argument("--cases", default="dense,sparse", help="which cases to run")
    parser.add_argument("--epochs", type=int, default=1, help="training epochs after loading")
    parser.add_argument("--workdir", type=Path, default=None, help="where files go (temp)")
    parser.add_argument(
        "--max-rss-gb",
        type=float,
        default=0.5 * os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / (1 << 30),
        help="stop a measurement whose memory passes this (default: half of RAM)",
    )
    parser.add_argument("--measure", choices=["baseline", "ours"], help=argparse.SUPPRESS)
    parser.add_argument("--measure-path", help=argparse.SUPPRESS)
    parser.add_argument("--measure-kind", help=argparse.SUPPRESS)
    parser.add_argument("--measure-sheet", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        run_measure(args)
        return
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        args.workdir = Path(tmp)
        rng = np.random.default_rng(0)
        rows, sizes = [], {}
        if "dense" in args.cases:
            n, p = parse_size(args.dense)
            path = write_dense(args.workdir, n, p, args.format, rng)
            sheet = args.workdir / "samples.csv"
            extra = ["--measure-sheet", str(sheet)] if args.format != "h5ad" else []
            baseline = child(
                args,
                "--measure",
                "baseline",
                "--measure-path",
                str(path),
                "--measure-kind",
                args.format,
            )
            ours = child(args, "--measure", "ours", "--measure-path", str(path), *extra)
            rows += rows_for(f"dense {args.format}", n * p * 4, baseline, ours)
            sizes["dense"] = (
                f"{n:,} x {p:,} float32 = {n * p * 4 / MB:,.0f} MB, file "
                f"{path.stat().st_size / MB:,.0f} MB"
            )
        if "sparse" in args.cases:
            n, p = parse_size(args.sparse)
            path = write_sparse(args.workdir, n, p, args.density, rng)
            dense_bytes = n * p * 4
            fits = dense_bytes < 0.4 * os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
            baseline = child(
                args,
                "--measure",
                "baseline",
                "--measure-path",
                str(path),
                "--measure-kind",
                "h5ad" if fits else "h5ad-read",
            )
            ours = child(args, "--measure", "ours", "--measure-path", str(path))
            rows += rows_for(
                "sparse h5ad", dense_bytes, baseline, ours, "baseline" if fits else "read_h5ad only"
            )
            sizes["sparse"] = (
                f"{n:,} x {p:,} at {args.density:.0%} (dense would be "
                f"{dense_bytes / MB:,.0f} MB), file {path.stat().st_size / MB:,.0f}"
                " MB"
                + (
                    ""
                    if fits
                    else "; baseline without toarray(): the dense copy would not fit in memory"
                )
            )
        print_table(rows, sizes)


if __name__ == "__main__":
    main()
