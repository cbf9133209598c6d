"""One DDP rank of ``riotvit train``: ``torchrun --nproc_per_node=N -m riotvit.train TILESET SAMPLES --out RUN ...``.

The arguments are those of ``riotvit train`` (``riotvit train --nproc N`` starts this N times).
"""

from __future__ import annotations

import typer

from riotvit.cli.train import TRAIN_EXAMPLES, train_command
from riotvit.train.launch import log_rank_output


def main(argv: list[str] | None = None) -> None:
    """Parse ``riotvit train``'s arguments and train as this rank."""
    log_rank_output()
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command(epilog=TRAIN_EXAMPLES)(train_command)
    app(args=argv, prog_name="python -m riotvit.train")


if __name__ == "__main__":
    main()
