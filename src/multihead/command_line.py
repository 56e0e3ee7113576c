"""Hints for command-line mistakes whose Hydra message sends a user the wrong way, checked
before Hydra parses the command line of `python train.py`.

- A value with brackets or parentheses (`data.matrix=runs/final(1).csv`) is Hydra grammar,
  not a path: Hydra reports a parse error with no hint to quote it.
- A key of `data=table`/`data=anndata` given without choosing that data config
  (`data.matrix=...` alone): Hydra says the key is not in the struct and suggests
  `+data.matrix`, which only moves the failure later.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf

DATA_GROUP = "data"
DEFAULT_DATA = "synthetic"


def _split(override: str) -> tuple[str, str] | None:
    if "=" not in override or override.startswith(("-", "~")):
        return None
    key, value = override.split("=", 1)
    return key.lstrip("+"), value


def grammar_hint(override: str) -> str | None:
    """A hint when `override` is not valid Hydra override grammar."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import OverrideParseException

    try:
        OverridesParser.create().parse_overrides([override])
    except OverrideParseException:
        parts = _split(override)
        if parts is None:
            return f"cannot parse the override {override!r}"
        key, value = parts
        return (
            f"cannot parse the override {override!r}: characters like ( ) [ ] {{ }} , and "
            "spaces are Hydra syntax in a value. Quote the value for Hydra, and the whole "
            f"override for the shell: '{key}=\"{value}\"'"
        )
    return None


def data_keys(conf_dir: Path, option: str) -> set[str]:
    """Top-level keys of one `data=` option, with those its defaults list places here."""
    path = conf_dir / DATA_GROUP / f"{option}.yaml"
    raw = OmegaConf.to_container(OmegaConf.load(path)) or {}
    keys = {k for k in raw if k != "defaults"}
    for entry in raw.get("defaults", []):
        if not isinstance(entry, str) or entry == "_self_":
            continue
        name, _, package = entry.partition("@")
        if package == "_here_":
            keys |= data_keys(conf_dir, name)
        elif package:
            keys.add(package)
    return keys


def data_option_hint(args: list[str], conf_dir: Path) -> str | None:
    """A hint when a `data.KEY=...` override belongs to another data option than the one
    chosen (the default, when the command line chooses none)."""
    pairs = [p for p in map(_split, args) if p is not None]
    chosen = next((v for k, v in pairs if k == DATA_GROUP), DEFAULT_DATA)
    options = sorted(p.stem for p in (conf_dir / DATA_GROUP).glob("*.yaml"))
    if chosen not in options:
        return None  # Hydra lists the valid options itself
    have = data_keys(conf_dir, chosen)
    for key, _ in pairs:
        if not key.startswith(f"{DATA_GROUP}."):
            continue
        top = key.split(".")[1]
        if top in have:
            continue
        owners = [o for o in options if o != chosen and top in data_keys(conf_dir, o)]
        if owners:
            choice = " or ".join(f"{DATA_GROUP}={o}" for o in owners)
            return (
                f"{key} is a setting of {choice}, not of {DATA_GROUP}={chosen}: add "
                f"{DATA_GROUP}={owners[0]} to the command line (not +{key})"
            )
    return None


def command_line_hint(args: list[str], conf_dir: Path) -> str | None:
    """The first hint that applies to these command-line arguments, or None."""
    overrides = [a for a in args if "=" in a and not a.startswith("-")]
    for override in overrides:
        hint = grammar_hint(override)
        if hint:
            return hint
    return data_option_hint(overrides, conf_dir)


HELP_RESOLVER = "multihead_help"
HELP = """multihead: does a multi-head network with a loss per task beat one sigmoid/BCE layer over
all outputs, on your data? Train, sweep and compare heads, losses and task weightings.

Examples
  python train.py                                     default: fused+bce on the built-in cohort
  python train.py head=split loss=ce seed=3           another design / training seed
  python train.py -m head=fused,split loss=bce,ce     the 2 x 2 sweep, one table at the end
  python train.py experiment=head_vs_loss             every head x loss x 3 seeds (72 jobs)
  python train.py data=table data.matrix=X.csv.gz data.samples=samples.csv   your own data
  python train.py data=anndata data.path=cohort.h5ad  AnnData (.X or a layer, labels from .obs)
  python train.py debug=fast                          a smoke test in seconds
  python -m multihead.report outputs/multirun/DATE    the comparison report of a sweep

Config groups (choose one option each: group=option)
{choices}

Any key can be overridden (key=value, e.g. data.batch_size=32); quote values with brackets or
parentheses: 'data.matrix="my data (1).csv"'. `--cfg job` prints the composed config.
A bad option, file or label stops with one line (exit status 2); HYDRA_FULL_ERROR=1 shows
the traceback. Hydra's own options: --hydra-help. More: README.md.
"""
#: config-group folders that only hold fragments the options include (not choices)
FRAGMENT_FOLDERS = ("shared",)
#: Hydra's own groups, explained by `--hydra-help`
HYDRA_GROUPS = ("hydra",)


def config_choices(conf_dir: Path) -> str:
    """`  head: fused, separate, split, towers` per config group, for `--help`; fragment
    folders (`data/shared`) are not choices and are left out."""
    lines = []
    for group in sorted(p for p in conf_dir.iterdir() if p.is_dir()):
        if group.name in HYDRA_GROUPS:
            continue
        options = sorted(p.stem for p in group.glob("*.yaml"))
        if options:
            lines.append(f"  {group.name}: {', '.join(options)}")
    return "\n".join(lines)


def register_help(conf_dir: Path) -> None:
    """Make `${multihead_help:}`, the help template in conf/hydra/default.yaml, the text above
    with the choices found in `conf_dir`: the help never lists a fragment or misses an option.
    (`$` is escaped: Hydra reads the template as a `string.Template`.)"""
    if not OmegaConf.has_resolver(HELP_RESOLVER):
        OmegaConf.register_new_resolver(
            HELP_RESOLVER, lambda: HELP.format(choices=config_choices(conf_dir)).replace("$", "$$")
        )
