"""The project's fit against a raw PyTorch loop doing the same work (a script, not a test).

    python scripts/benchmark.py                                  # built-in cohort, CPU
    python scripts/benchmark.py --device cuda --features 20000 --batch 512 --samples 20000

Both train the same network (same initial weights, loss, task weighting and optimizer) on the
same prepared cohort, with the same batch size and number of epochs, compute the validation
loss after every epoch and keep the best weights. The raw loop holds the training rows as one
tensor on the device and draws batches there; the project's fit is `trainer.fit` as a job
runs it (its DataLoader or `data.placement`, checkpoint callback, logging). Printed:

  steps      the training part of every epoch (batches, forward, backward, optimizer step),
             validation and checkpointing left out: samples/s and ratio project / raw
  whole fit  `trainer.fit` against the whole raw loop, validation and best weights included
  job        a whole default job (`multihead.training.run.train`: data, fit, test, files) on
             the same cohort, with its default epochs and callbacks: its seconds outside
             `trainer.fit` are the per-job overhead

The fits alternate `--repeats` times in one process, their order rotated from one repeat to
the next (so a drift of the machine's load falls on each alike); a ratio is the project's
throughput over the raw loop's in the same repeat (1.0 = as fast as raw PyTorch), and the
median and range over the repeats are printed. `--lightning-steps 1 16` times the project's
fit with at most 1 and at most 16 optimizer steps per Lightning call (`training/steps.py`;
1 is one step a call, as before chunks; default: the project's default) in the same repeats.
"""

from __future__ import annotations

import argparse
import copy
import logging
import statistics
import tempfile
import time
from pathlib import Path

import pytorch_lightning as pl
import torch
from hydra import compose, initialize_config_dir

from multihead.data.datamodule import prepare_cohort
from multihead.training import run
from multihead.training.builders import build_datamodule, build_module, build_trainer
from multihead.training.job import quiet_lightning
from multihead.training.steps import STEPS_PER_CALL

ROOT = Path(__file__).resolve().parents[1]
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}  # --clock
now = CLOCKS["wall"]
QUIET = ["logger=none", "trainer.enable_progress_bar=false", "callbacks.progress=null"]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--features", type=int, default=None, help="genes (default: config's)")
    parser.add_argument("--samples", type=int, default=None, help="samples (default: config's)")
    parser.add_argument("--batch", type=int, default=None, help="batch size (default: config's)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--placement", choices=("auto", "device", "host"), default="auto")
    parser.add_argument("--repeats", type=int, default=3, help="alternating fits (median)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.add_argument("--no-job", action="store_true", help="skip the per-job overhead")
    parser.add_argument(
        "--clock",
        choices=tuple(CLOCKS),
        default="wall",
        help="fits timed in wall seconds or in this process's CPU seconds (steadier on a "
        "machine shared with other work; the job is always timed in wall seconds)",
    )
    parser.add_argument(
        "--lightning-steps",
        type=int,
        nargs="+",
        default=[STEPS_PER_CALL],
        help="most optimizer steps per Lightning call (1: one step a call); several: each timed",
    )
    parser.add_argument("overrides", nargs="*", help="more config overrides, e.g. head=split")
    return parser.parse_args()


def config(args: argparse.Namespace, out: Path, fit_only: bool = True):
    """The benchmark's fit (fixed epochs, no early stopping, quiet), or a default job."""
    fixed = [
        *QUIET,
        "callbacks.early_stopping=null",
        f"trainer.max_epochs={args.epochs}",
        "budget.min_steps=null",
        "budget.patience_steps=null",
        "budget.val_every_steps=null",
    ]
    overrides = [
        f"paths.output_dir={out}",
        f"trainer.accelerator={'gpu' if args.device == 'cuda' else 'cpu'}",
        f"data.placement={args.placement}",
        *(fixed if fit_only else []),
        *args.overrides,
    ]
    if args.features:
        overrides.append(f"data.synthetic.n_features={args.features}")
    if args.samples:
        overrides.append(f"data.synthetic.n_samples={args.samples}")
    if args.batch:
        overrides.append(f"data.batch_size={args.batch}")
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose(config_name="train", overrides=overrides)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class StepClock(pl.Callback):
    """Seconds from each training epoch's start to its validation (or its end)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.started: float | None = None

    def on_train_epoch_start(self, trainer, pl_module):
        synchronize(pl_module.device)
        self.started = now()

    def _stop(self, pl_module) -> None:
        if self.started is not None:
            synchronize(pl_module.device)
            self.seconds += now() - self.started
            self.started = None

    def on_validation_start(self, trainer, pl_module):
        self._stop(pl_module)

    def on_train_epoch_end(self, trainer, pl_module):
        self._stop(pl_module)


def project_fit(cfg, cohort, out: Path, steps_per_call: int) -> tuple[float, float]:
    module = build_module(cfg, cohort, output_dir=None)
    module.most_steps_per_call = steps_per_call
    datamodule = build_datamodule(cfg, cohort)
    trainer = build_trainer(cfg, out)
    clock = StepClock()
    trainer.callbacks.insert(0, clock)
    started = now()
    trainer.fit(module, datamodule=datamodule)
    synchronize(module.device)
    return clock.seconds, now() - started


def raw_fit(cfg, cohort, device: torch.device) -> tuple[float, float]:
    """The same work in plain PyTorch: data on the device, batches drawn there."""
    module = build_module(cfg, cohort, output_dir=None).to(device)  # same seed, same weights
    net, loss_fn, weighting = module.net, module.loss_fn, module.weighting
    optimizer = module.configure_optimizers()
    train = torch.from_numpy(cohort.splits["train"])
    val = torch.from_numpy(cohort.splits["val"])
    x, y, v = (t[train].to(device) for t in (cohort.features, cohort.labels, cohort.values))
    vx, vy, vv = (t[val].to(device) for t in (cohort.features, cohort.labels, cohort.values))
    batch, eval_batch = int(cfg.data.batch_size), int(cfg.data.eval_batch_size)
    generator = torch.Generator().manual_seed(int(cfg.seed))
    best, best_state, step_seconds = float("inf"), None, 0.0
    synchronize(device)
    started = now()
    for _ in range(int(cfg.trainer.max_epochs)):
        epoch_start = now()
        module.train()
        order = torch.randperm(len(x), generator=generator).to(device)
        for first in range(0, len(x), batch):
            rows = order[first : first + batch]
            _, parts = loss_fn(net(x[rows]), y[rows], v[rows])
            objective = weighting(parts)
            optimizer.zero_grad(set_to_none=True)
            objective.backward()
            optimizer.step()
        synchronize(device)
        step_seconds += now() - epoch_start
        module.eval()
        with torch.no_grad():
            total = torch.zeros((), device=device)
            for first in range(0, len(vx), eval_batch):
                end = first + eval_batch
                _, parts = loss_fn(net(vx[first:end]), vy[first:end], vv[first:end])
                total += weighting.selection_loss(parts) * len(vx[first:end])
            loss = float(total) / len(vx)
        if loss < best:
            best, best_state = loss, copy.deepcopy(module.state_dict())
    module.load_state_dict(best_state)
    synchronize(device)
    return step_seconds, now() - started


def job_overhead(args: argparse.Namespace, out: Path) -> tuple[float, float]:
    """A default job's wall time (`run.train`, as Hydra calls it: data, plan, fit, test,
    files, table) and its `trainer.fit`'s (the job's own trainer, timed)."""
    fits: list[float] = []
    build = run.build_trainer

    def timed_trainer(cfg, output_dir):
        trainer = build(cfg, output_dir)
        fit = trainer.fit

        def timed_fit(*a, **k):
            started = time.perf_counter()
            fit(*a, **k)
            fits.append(time.perf_counter() - started)

        trainer.fit = timed_fit
        return trainer

    run.build_trainer = timed_trainer
    cfg = config(args, out, fit_only=False)  # Hydra composes before a job starts
    try:
        started = time.perf_counter()
        run.train(cfg)
        return time.perf_counter() - started, fits[0]
    finally:
        run.build_trainer = build


def main() -> None:
    global now
    args = parse_args()
    now = CLOCKS[args.clock]
    if args.threads:
        torch.set_num_threads(args.threads)
    quiet_lightning()
    logging.getLogger("pytorch_lightning").setLevel(logging.WARNING)
    device = torch.device(args.device)
    runs = ["raw", *(f"project, {n} step{'s' * (n > 1)}/call" for n in args.lightning_steps)]
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in runs}
    with tempfile.TemporaryDirectory() as out:
        cfg = config(args, Path(out))
        cohort = prepare_cohort(cfg.data)
        raw_fit(cfg, cohort, device)  # warm-up: first-call allocations and kernel choices
        for repeat in range(args.repeats):
            first = repeat % len(runs)  # each run goes first in turn
            for name in runs[first:] + runs[:first]:
                if name == "raw":
                    times[name].append(raw_fit(cfg, cohort, device))
                else:
                    n = args.lightning_steps[runs.index(name) - 1]
                    fit_out = Path(out) / f"fit{repeat}-{n}"
                    times[name].append(project_fit(cfg, cohort, fit_out, n))
        job = None if args.no_job else job_overhead(args, Path(out) / "job")
    n_train, epochs = len(cohort.splits["train"]), int(cfg.trainer.max_epochs)
    samples = n_train * epochs
    print(
        f"cohort: {n_train} training samples x {cohort.num_features} features, batch "
        f"{cfg.data.batch_size}, {epochs} epochs, device {device}, "
        f"torch threads {torch.get_num_threads()}, placement {args.placement}, "
        f"{args.clock} clock, median [range] of {args.repeats} repeats"
    )
    raw = times["raw"]
    for name in runs[1:]:
        print(f"{name:24} {'project':>16} {'raw PyTorch':>16} {'ratio':>7} {'range':>13}")
        for k, part in enumerate(("steps", "whole fit")):
            ours = statistics.median(t[k] for t in times[name])
            theirs = statistics.median(t[k] for t in raw)
            ratios = [r[k] / o[k] for o, r in zip(times[name], raw, strict=True)]
            print(
                f"  {part:22} {samples / ours:>10,.0f} smp/s {samples / theirs:>10,.0f} smp/s "
                f"{statistics.median(ratios):>7.2f} [{min(ratios):.2f}, {max(ratios):.2f}]"
                f"   ({ours:.2f} s vs {theirs:.2f} s)"
            )
    if job is not None:
        wall, fit = job
        print(
            f"job        {wall:.2f} s, of which trainer.fit {fit:.2f} s: "
            f"{wall - fit:.2f} s per job outside the fit (setup, test, files)"
        )


if __name__ == "__main__":
    main()
