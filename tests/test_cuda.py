"""What only a CUDA GPU can show, end to end (skipped without one; `scripts/gpu_check.sh`
runs these and the other tests marked `cuda`): `data.placement=auto` puts a small cohort on
the GPU, and a `trainer=gpu` run counts exactly and predicts what its checkpoint predicts on
the CPU."""

from __future__ import annotations

import numpy as np
import torch

from multihead.data.datamodule import prepare_cohort
from multihead.data.placement import DEVICE, HOST, resolve_placement
from multihead.run_folder import read_confusion, read_predictions, task_probabilities
from multihead.training.run import evaluate_checkpoint, train
from tests.conftest import NEEDS_CUDA, SMALL, compose_config

pytestmark = NEEDS_CUDA

#: probabilities of a GPU run and of its checkpoint on the CPU agree this closely (float32
#: rounding of other kernels); predicted classes agree wherever the top two differ by more
PROBABILITY_TOLERANCE = 1e-4
TIE_MARGIN = 1e-3


def test_auto_places_a_small_cohort_on_the_gpu():
    cohort = prepare_cohort(compose_config(SMALL).data)
    gpu = torch.device("cuda", 0)
    assert resolve_placement("auto", cohort.features, gpu, 1) == DEVICE
    assert resolve_placement("auto", cohort.features, gpu, 2) == HOST  # several processes


def test_a_gpu_run_counts_exactly_and_its_checkpoint_predicts_the_same_on_the_cpu(tmp_path):
    gpu_cfg = compose_config([*SMALL, "trainer=gpu", "trainer.max_epochs=1"], tmp_path / "gpu")
    metrics = train(gpu_cfg)
    gpu, cpu = tmp_path / "gpu", tmp_path / "cpu"
    n_test = metrics["split_sizes"]["test"]
    assert metrics["world_size"] == 1 and metrics["epochs_trained"] == 1
    evaluate_checkpoint(compose_config(SMALL, cpu), gpu / metrics["best_checkpoint"])
    on_gpu, on_cpu = read_predictions(gpu), read_predictions(cpu)
    assert len(on_gpu) == n_test and on_gpu["sample_id"].tolist() == on_cpu["sample_id"].tolist()
    for task in ("age", "sex"):
        assert int(read_confusion(gpu, task).to_numpy().sum()) == n_test
        assert metrics["tasks"][task]["n"] == n_test
        p_gpu, _ = task_probabilities(on_gpu, task)
        p_cpu, _ = task_probabilities(on_cpu, task)
        np.testing.assert_allclose(p_gpu, p_cpu, atol=PROBABILITY_TOLERANCE)
        top2 = np.sort(p_cpu, axis=1)[:, -2:]
        clear = top2[:, 1] - top2[:, 0] > TIE_MARGIN
        predicted = on_gpu[f"{task}_pred"].to_numpy()[clear]
        assert (predicted == on_cpu[f"{task}_pred"].to_numpy()[clear]).all(), task
