"""ACLED events: read every export variant (:func:`read_acled`), its vocabulary and crowd sizes.

Label building on top of the events table lives in later modules of this package.
"""

from riotvit.join.events.acled import (
    ACLED_COLUMNS,
    EVENT_TYPES,
    AcledConfig,
    AcledReport,
    read_acled,
)
from riotvit.join.events.crowd import CROWD_CLASSES, parse_crowd_size

__all__ = [
    "ACLED_COLUMNS",
    "CROWD_CLASSES",
    "EVENT_TYPES",
    "AcledConfig",
    "AcledReport",
    "parse_crowd_size",
    "read_acled",
]
