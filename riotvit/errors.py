"""One exception hierarchy for everything a user can get wrong.

Every message is a single line that says what was wrong, where (the file or option), and how
to fix it. The CLI prints it without a traceback and exits non-zero.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class RiotvitError(Exception):
    """Base class: a user-facing, one-line error."""

    exit_code = 2

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))


class ConfigError(RiotvitError):
    """A config file or option is invalid (unknown key, bad value)."""


class CatalogError(RiotvitError):
    """A data catalog entry is broken or unknown."""


class InputError(RiotvitError):
    """An input data file is missing, unreadable or inconsistent."""


class RasterError(InputError):
    """A raster cannot be used (no CRS, corrupt, not a raster, wrong bands)."""


class GridError(RiotvitError):
    """The crop grid cannot be built with the requested sizes."""


class EventsError(InputError):
    """An ACLED export cannot be read or used."""


class CensusError(InputError):
    """A census layer cannot be read or used."""


class TileSetError(InputError):
    """A tile set folder is missing, incomplete or inconsistent."""


class SamplesError(InputError):
    """A samples table is missing, inconsistent with its tile set, or unusable for training."""


class ModelError(RiotvitError):
    """A model cannot be built (unknown backbone, unmappable pretrained bands)."""


class BundleError(InputError):
    """A model bundle is missing, incomplete or from an incompatible version."""


class RegionError(InputError):
    """A prediction region cannot be resolved or is outside the imagery."""


class OutputExistsError(RiotvitError):
    """The output already exists and --overwrite was not given."""


class OutputPathError(RiotvitError, OSError):
    """An output path cannot be written (a file where a folder must go, no permission, disk full)."""


class InputPathError(InputError, OSError):
    """An input path is missing or of the wrong kind (a file where a folder must be, or the reverse)."""


class TooMuchWorkError(ConfigError):
    """A plan is far larger than intended (a unit typo); the message says how to allow it."""


def clip(value: object, n: int = 80) -> str:
    """``value`` as text for an error message: one line, at most ``n`` characters (a huge input is
    never rendered whole)."""
    text = value if isinstance(value, str) else _short_repr(value, n)
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


def _short_repr(value: object, n: int) -> str:
    import reprlib

    r = reprlib.Repr()
    r.maxstring = r.maxother = n
    r.maxlist = r.maxtuple = r.maxdict = r.maxset = 6
    r.maxlevel = 3
    return r.repr(value)


def suggest(name: str, choices: Iterable[str], n: int = 3) -> str:
    """Return ' (did you mean: a, b?)' for close matches of ``name`` in ``choices``, or ''."""
    close = difflib.get_close_matches(str(name), [str(c) for c in choices], n=n, cutoff=0.5)
    return f" (did you mean: {', '.join(close)}?)" if close else ""


class ClusterError(RiotvitError):
    """The Dask scheduler or the torch.distributed launch cannot be used (no scheduler answers, bad --workers)."""
