"""The project's own exceptions, so callers can tell bad input from bugs, and how an entry
point reports them: one line on stderr and exit status 2; the traceback only when asked for
(`HYDRA_FULL_ERROR=1`)."""

from __future__ import annotations

import os
import sys
from typing import NoReturn


class MultiheadError(Exception):
    """Base class for every error the project raises on purpose."""


class ConfigError(MultiheadError):
    """A configuration value is unknown, invalid, or inconsistent with another one."""


class DataError(MultiheadError):
    """Input data is missing, malformed, or inconsistent with the configuration."""


#: set to 1 for the full traceback of a project error (Hydra's own variable, one switch for both)
FULL_ERROR_VARIABLE = "HYDRA_FULL_ERROR"
#: exit status of a command that refused its input (argparse's convention)
USAGE_EXIT_CODE = 2


def full_error_wanted() -> bool:
    return os.environ.get(FULL_ERROR_VARIABLE) == "1"


def print_error(message: str) -> None:
    """One line on stderr: `error: message` (newlines inside the message become spaces)."""
    print("error: " + " ".join(str(message).split()), file=sys.stderr)


def exit_with_message(message: str) -> NoReturn:
    """Print `error: message` on stderr and exit with status 2."""
    print_error(message)
    raise SystemExit(USAGE_EXIT_CODE)
