"""Train and compare heads and losses: `python train.py -m head=fused,split loss=bce,ce`."""

import sys
import warnings
from pathlib import Path

import hydra
from omegaconf import DictConfig

CONF_DIR = Path(__file__).resolve().parent / "conf"
# conf/hydra/launcher/{joblib,submitit_local}.yaml set the launcher plugins' options under
# their own names; Hydra 1.3 validates them against the plugins' schemas and says so each run
warnings.filterwarnings("ignore", message="(?s).*validated against ConfigStore schema")


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> None:
    from multihead.training.job import run_job  # after Hydra parsed args: `--help` stays fast

    run_job(cfg)


if __name__ == "__main__":
    from multihead.command_line import command_line_hint, register_help
    from multihead.errors import exit_with_message
    from multihead.run_folder import register_job_folder_resolver

    register_help(CONF_DIR)
    register_job_folder_resolver()
    hint = command_line_hint(sys.argv[1:], CONF_DIR)
    if hint:
        exit_with_message(hint)
    main()
