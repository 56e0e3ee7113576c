"""Built-in tables that map the many ways a label is written onto one class name.

Sample sheets write sex as M/F, male/female, 1/2 (ISO 5218: 1 male, 2 female), XY/XX, ...;
a task with `codes: sex` accepts all of them. Case, surrounding spaces and repeated inner
spaces are ignored. A value mapped to None counts as a missing label. 0/1 codings are
ambiguous and deliberately absent (0 is refused as unknown): give them in the config, e.g.
`codes: {0: female, 1: male}`. A mapping given in the config extends the built-in table of
the task (its own entries win; `null` marks a value as missing), so `codes: {U: null}` still
accepts M/F.
"""

from __future__ import annotations

import re

_SPACES = re.compile(r"\s+")

MISSING_WORDS = (
    "",
    "na",
    "n/a",
    "nan",
    "none",
    "null",
    "unknown",
    "unk",
    "not available",
    "not reported",
    "missing",
    "?",
    "-",
)

SEX: dict[str, str | None] = {
    **{w: "male" for w in ("m", "male", "males", "man", "men", "1", "xy", "boy", "masculine")},
    **{
        w: "female"
        for w in ("f", "female", "females", "woman", "women", "2", "xx", "girl", "feminine")
    },
    **{w: None for w in MISSING_WORDS},
}

CODINGS: dict[str, dict[str, str | None]] = {"sex": SEX}


def normalise(value: object) -> str:
    """Lower case, trimmed, inner runs of spaces as one: 'Male ' and ' MALE' match."""
    return _SPACES.sub(" ", str(value).strip()).casefold()
