"""``riotvit join``: ACLED event history and census data attached to each crop.

Subpackages and modules: ``events`` (reading every ACLED export variant, labels over forecast
windows, history features), ``census`` (reading and areal/dasymetric interpolation onto crops),
``features`` (the metadata builders shared by join and predict), ``folds`` (spatial block folds
and the temporal split) and ``stage`` (the stage itself, ``JoinConfig`` and ``samples.parquet``).
See ``docs/design.md``.
"""

from riotvit.lazy import callable_package, lazy_exports

_EXPORTS = {
    "join": "riotvit.join.stage",
    "JoinConfig": "riotvit.join.stage",
    "JoinResult": "riotvit.join.stage",
    "read_samples": "riotvit.join.stage",
}
__all__ = list(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
callable_package(__name__, "join")
