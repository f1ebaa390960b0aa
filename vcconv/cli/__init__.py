"""Command-line interface: thin typer commands over the library.

Every command only parses arguments, calls one library function and prints
with rich.  User mistakes (:class:`vcconv.errors.VcconvError`) become one red
line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import logging
import sys

import typer
from rich.console import Console

from vcconv.errors import VcconvError

console = Console()
err_console = Console(stderr=True)

app = typer.Typer(
    name="vcconv",
    help="One-shot voice conversion and speech representation learning.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _register() -> None:
    from vcconv.cli import data, info  # noqa: F401  (commands register on import)

    for optional in ("convert", "batch", "train", "vocoder", "evaluate", "repr", "probe", "report"):
        try:
            __import__(f"vcconv.cli.{optional}")
        except ModuleNotFoundError as err:
            if err.name != f"vcconv.cli.{optional}":
                raise


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``vcconv`` console script and ``python -m vcconv``."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    _register()
    try:
        app(args=argv, prog_name="vcconv", standalone_mode=False)
    except VcconvError as err:
        err_console.print(f"[bold red]error:[/] {err}", highlight=False, soft_wrap=True)
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        err_console.print("[yellow]interrupted[/]")
        sys.exit(130)
    except SystemExit:
        raise
    except Exception as err:  # click usage errors and aborts
        # typer >= 0.2x vendors click as typer._click (no `click` package installed), older
        # typer uses click itself: recognise both by the classes' names, not by import.
        names = {cls.__name__ for cls in type(err).__mro__}
        if "ClickException" in names:
            err.show()
            sys.exit(getattr(err, "exit_code", 2))
        if "Abort" in names:
            sys.exit(1)
        raise
