"""Domain exceptions. The library raises these; the CLI turns them into one line and exit code 2."""

from __future__ import annotations

__all__ = ["LeakscanError", "InputError", "ConfigError", "OutputError", "ArgumentError", "missing_extra"]


class LeakscanError(Exception):
    """Base class of every error leakscan raises on purpose."""


class InputError(LeakscanError):
    """The data source (folder, manifest, arrays) cannot be used as given."""


class ConfigError(LeakscanError, ValueError):
    """A parameter is out of range or inconsistent; the message quotes the value and the fix.
    ``keyword``, when given, is the parameter the message starts with (``min_precision``): the
    CLI says the option it came from (``--min-precision``) in its place."""

    def __init__(self, *args, keyword: str | None = None):
        super().__init__(*args)
        self.keyword = keyword


class OutputError(LeakscanError):
    """Results cannot be written where asked (not writable, or would overwrite without force)."""


class ArgumentError(InputError, ValueError):
    """An argument of a library call has the wrong length, shape, dtype or type (scikit-learn's
    ValueError); the message names the argument and, for lengths, both lengths."""


def missing_extra(what: str, extra: str, module: str) -> ImportError:
    """The ImportError raised when an optional library is missing: names the pip install that fixes it."""
    return ImportError(f"{what} needs {module}: pip install 'leakscan[{extra}]'")
