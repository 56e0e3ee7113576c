"""What the sweep's launcher means for one job: how many CPU threads torch may use.

`hydra/launcher=joblib` runs `n_jobs` jobs at once on one machine: each job gets
cores / n_jobs threads, so the jobs share the cores instead of each starting one thread per
core. Under submitit (`submitit_local`, `slurm`) a job owns `cpus_per_task` cores. The basic
launcher runs one job at a time and leaves torch's default. The job sets the number before
it trains and prints it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import torch

JOBLIB = "JoblibLauncher"
SUBMITIT = ("LocalLauncher", "SlurmLauncher")


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity, which SLURM and taskset restrict)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def parallel_jobs(n_jobs: int, cores: int) -> int:
    """joblib's meaning of n_jobs: -1 is one job per core, -2 all cores but one, and so on;
    a positive n_jobs runs that many at once, even beyond the cores."""
    return n_jobs if n_jobs > 0 else max(1, cores + 1 + n_jobs)


def threads_per_job(launcher: Mapping[str, Any], cores: int) -> tuple[int, str] | None:
    """(torch threads, why) for a job run by this launcher config; None: leave torch alone."""
    target = str(launcher.get("_target_", ""))
    if target.endswith(JOBLIB):
        jobs = parallel_jobs(int(launcher.get("n_jobs") or -1), cores)
        return max(1, cores // jobs), f"{cores} cores / {jobs} parallel jobs"
    if target.endswith(SUBMITIT) and launcher.get("cpus_per_task"):
        cpus = int(launcher["cpus_per_task"])
        return cpus, f"cpus_per_task={cpus}"
    return None


def set_job_threads(launcher: Mapping[str, Any] | None) -> int | None:
    """Set torch's threads for this job from the launcher config and print them."""
    chosen = threads_per_job(launcher or {}, available_cores())
    if chosen is None:
        return None
    threads, why = chosen
    torch.set_num_threads(threads)
    print(f"torch threads per job: {threads} ({why})", flush=True)
    return threads
