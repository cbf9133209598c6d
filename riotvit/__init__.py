"""riotvit: riot risk mapped from space.

The library is organised by pipeline stage (see DESIGN.md): ``grid`` (the crop grid),
``raster`` (tiling), ``events`` and ``census`` (join), ``models`` and ``training`` (train),
``inference`` (predict) and ``explain``. Heavy modules (torch, shap) are imported lazily so
that ``import riotvit`` and ``riotvit --help`` stay fast.
"""

from riotvit.errors import RiotvitError

__version__ = "0.1.0"

__all__ = ["RiotvitError", "__version__"]
