"""Train and compare heads and losses: `python train.py -m head=fused,split loss=bce,ce`."""

import hydra
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> None:
    from multihead.training.job import run_job  # after Hydra parsed args: `--help` stays fast

    run_job(cfg)


if __name__ == "__main__":
    main()
