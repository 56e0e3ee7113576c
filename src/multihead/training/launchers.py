"""What the sweep's launcher means for one job: how many CPU threads torch may use, and
how many processes (ranks) train it.

Threads. `hydra/launcher=joblib` runs `n_jobs` jobs at once on one machine: each job gets
cores / n_jobs threads, so the jobs share the cores instead of each starting one thread per
core. Under submitit (`submitit_local`, `slurm`) a job owns `cpus_per_task` cores. The basic
launcher runs one job at a time and leaves torch's default. The job sets the number before
it trains and prints it.

Ranks. Under submitit a job may have several tasks (`hydra.launcher.tasks_per_node` x
`nodes`): submitit starts every task with the same pickled job (its own overrides, no
relaunch of the sweep's command line), and each task is one rank of the job's trainer:
`trainer.strategy=ddp` with `SubmititEnvironment`, which reads the ranks from submitit's
`JobEnvironment`. One environment serves `submitit_local` and `slurm` alike (on SLURM,
submitit's `JobEnvironment` reads SLURM's variables, as Lightning's `SLURMEnvironment` would),
so the path tested on this machine is the one a cluster runs. `trainer.devices` must equal
`tasks_per_node` (one device per task); `trainer.num_nodes` is set to `nodes`.
"""

from __future__ import annotations

import os
import random
from collections.abc import Mapping
from typing import Any

import torch
from lightning_fabric.plugins.environments import ClusterEnvironment
from omegaconf import DictConfig, open_dict
from pytorch_lightning.utilities import rank_zero_only

from multihead.errors import ConfigError

JOBLIB = "JoblibLauncher"
SUBMITIT = ("LocalLauncher", "SlurmLauncher")
#: the range of main ports a job draws from, seeded by its job id (submitit's own
#: TorchDistributedEnvironment draws from the same range)
MAIN_PORTS = (20000, 60000)
#: the main address of a job on one machine
LOCALHOST = "127.0.0.1"
#: the trainer strategy of a job whose ranks are submitit's tasks (started externally)
TASK_STRATEGY = "ddp"


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity, which SLURM and taskset restrict)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def parallel_jobs(n_jobs: int, cores: int) -> int:
    """joblib's meaning of n_jobs: -1 is one job per core, -2 all cores but one, and so on;
    a positive n_jobs runs that many at once, even beyond the cores."""
    return n_jobs if n_jobs > 0 else max(1, cores + 1 + n_jobs)


def is_submitit(launcher: Mapping[str, Any]) -> bool:
    return str(launcher.get("_target_", "")).endswith(SUBMITIT)


def threads_per_job(launcher: Mapping[str, Any], cores: int) -> tuple[int, str] | None:
    """(torch threads, why) for a job run by this launcher config; None: leave torch alone."""
    target = str(launcher.get("_target_", ""))
    if target.endswith(JOBLIB):
        jobs = parallel_jobs(int(launcher.get("n_jobs") or -1), cores)
        return max(1, cores // jobs), f"{cores} cores / {jobs} parallel jobs"
    if is_submitit(launcher) and launcher.get("cpus_per_task"):
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


# ------------------------------------------------------------------------ ranks from tasks


def main_port(job_id: str) -> int:
    """The same port in every task of a job and, seeded by the job id, another port for each
    job, so concurrent jobs on one machine do not clash (two jobs draw the same port with a
    chance of 1 in 40,000)."""
    return random.Random(job_id).randint(*MAIN_PORTS)


class SubmititEnvironment(ClusterEnvironment):
    """Lightning's view of a submitit job whose tasks are the ranks: global and local rank,
    node, world size and job id from `submitit.JobEnvironment()`; the main address is this
    machine on one node, else the job's first node."""

    def __init__(self) -> None:
        import submitit  # only inside a submitit job

        self.job = submitit.JobEnvironment()

    @property
    def creates_processes_externally(self) -> bool:
        return True  # submitit started every task: Lightning launches nothing

    @property
    def main_address(self) -> str:
        return LOCALHOST if self.job.num_nodes == 1 else self.job.hostnames[0]

    @property
    def main_port(self) -> int:
        return main_port(self.job.job_id)

    @staticmethod
    def detect() -> bool:
        try:
            import submitit

            submitit.JobEnvironment()
        except (ImportError, RuntimeError):
            return False
        return True

    def world_size(self) -> int:
        return self.job.num_tasks

    def set_world_size(self, size: int) -> None:
        if size != self.job.num_tasks:
            raise ValueError(f"the submitit job has {self.job.num_tasks} tasks, not {size}")

    def global_rank(self) -> int:
        return self.job.global_rank

    def set_global_rank(self, rank: int) -> None:
        if rank != self.job.global_rank:
            raise ValueError(f"this submitit task is rank {self.job.global_rank}, not {rank}")

    def local_rank(self) -> int:
        return self.job.local_rank

    def node_rank(self) -> int:
        return self.job.node

    def validate_settings(self, num_devices: int, num_nodes: int) -> None:
        if num_devices * num_nodes != self.job.num_tasks or num_nodes != self.job.num_nodes:
            raise ValueError(
                f"the trainer asks for {num_devices} devices x {num_nodes} nodes; the submitit "
                f"job has {self.job.num_tasks} tasks on {self.job.num_nodes} nodes"
            )


def ranks_from_tasks(trainer: Mapping[str, Any]) -> bool:
    """The trainer config's ranks are submitit's tasks (set by `spread_over_tasks`)."""
    target = f"{__name__}.{SubmititEnvironment.__name__}"
    return any(
        isinstance(p, Mapping) and p.get("_target_") == target for p in trainer.get("plugins") or ()
    )


def job_tasks(launcher: Mapping[str, Any]) -> tuple[int, int]:
    """(tasks per node, nodes) of a submitit launcher config; (1, 1) for any other."""
    if not is_submitit(launcher):
        return 1, 1
    return int(launcher.get("tasks_per_node") or 1), int(launcher.get("nodes") or 1)


def check_job_tasks(cfg: DictConfig, launcher: Mapping[str, Any]) -> None:
    """A job with several tasks trains one rank per task: the trainer must ask for one device
    per task, a GPU job must be given as many GPUs, and tuning (trials in one process) is
    not spread."""
    tasks, nodes = job_tasks(launcher)
    devices = cfg.trainer.get("devices", 1)
    if devices != tasks or isinstance(devices, bool):
        raise ConfigError(
            f"hydra.launcher.tasks_per_node={tasks} starts one rank per task: trainer.devices "
            f"must be {tasks} too, got {devices!r}"
        )
    num_nodes = cfg.trainer.get("num_nodes", nodes)
    if num_nodes != nodes:
        raise ConfigError(
            f"hydra.launcher.nodes={nodes}: trainer.num_nodes must be {nodes} too (or unset), "
            f"got {num_nodes!r}"
        )
    gpus = launcher.get("gpus_per_node")
    accelerator = str(cfg.trainer.get("accelerator", "auto"))
    if accelerator in ("gpu", "cuda") and gpus is not None and int(gpus) < tasks:
        raise ConfigError(
            f"trainer.accelerator={accelerator} with hydra.launcher.tasks_per_node={tasks} "
            f"needs hydra.launcher.gpus_per_node >= {tasks} (one GPU per task), got {gpus}"
        )
    if (cfg.get("tune") or {}).get("name", "none") != "none":
        raise ConfigError(
            f"tune={cfg.tune.name} runs its trials in one process; with "
            f"hydra.launcher.tasks_per_node={tasks} every task would tune on its own. Tune in "
            "a one-task job, then train the chosen values on several tasks"
        )


def spread_over_tasks(cfg: DictConfig, launcher: Mapping[str, Any] | None) -> int:
    """Make this job's trainer one rank per submitit task, written into `cfg.trainer` (so the
    job's config.yaml shows it): strategy `ddp`, `num_nodes` and the `SubmititEnvironment`
    plugin. Also tells Lightning's rank-zero helpers this task's rank before the trainer
    exists (the job's files are written by rank 0 only). Returns the world size (1: a job
    with one task, left as it is)."""
    tasks, nodes = job_tasks(launcher or {})
    if tasks * nodes == 1:
        return 1
    check_job_tasks(cfg, launcher or {})
    environment = SubmititEnvironment()
    with open_dict(cfg):
        cfg.trainer.strategy = TASK_STRATEGY
        cfg.trainer.num_nodes = nodes
        cfg.trainer.plugins = [{"_target_": f"{__name__}.{SubmititEnvironment.__name__}"}]
    rank_zero_only.rank = environment.global_rank()
    print(
        f"rank {environment.global_rank()} of {environment.world_size()} "
        f"(submitit job {environment.job.job_id}, node {environment.node_rank()}, "
        f"main {environment.main_address}:{environment.main_port})",
        flush=True,
    )
    return environment.world_size()
