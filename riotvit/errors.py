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


def suggest(name: str, choices: Iterable[str], n: int = 3) -> str:
    """Return ' (did you mean: a, b?)' for close matches of ``name`` in ``choices``, or ''."""
    close = difflib.get_close_matches(str(name), [str(c) for c in choices], n=n, cutoff=0.5)
    return f" (did you mean: {', '.join(close)}?)" if close else ""
