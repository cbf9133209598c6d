"""riotvit: riot risk mapped from space.

The library is organised like the pipeline (see docs/design.md): one package per stage,
named like its command (``synth``, ``tile``, ``join``, ``train``, ``predict``, ``explain``),
``publish`` for user-facing outputs, ``pipeline`` and ``cli``; shared pieces at the top
(``grid``, ``config``, ``errors``, ``io``, ``device``, ``catalog``). Heavy modules (torch,
shap) are imported lazily so that ``import riotvit`` and ``riotvit --help`` stay fast.
"""

from riotvit.errors import RiotvitError

__version__ = "0.1.0"

__all__ = ["RiotvitError", "__version__"]
