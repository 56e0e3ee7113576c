"""The project's own exceptions, so callers can tell bad input from bugs."""


class MultiheadError(Exception):
    """Base class for every error the project raises on purpose."""


class ConfigError(MultiheadError):
    """A configuration value is unknown, invalid, or inconsistent with another one."""


class DataError(MultiheadError):
    """Input data is missing, malformed, or inconsistent with the configuration."""
