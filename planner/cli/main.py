"""The `ttsplan` command line. Commands live beside the code they drive and register here.

calibration/ adds its commands through the `ttsplan.commands` entry-point group, so that
planner never imports calibration.
"""

from __future__ import annotations

import importlib
import sys
from importlib.metadata import entry_points

import typer

from planner.core.errors import UserError

app = typer.Typer(
    name="ttsplan",
    help="Plan, predict and run compute-optimal test-time scaling.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Modules of planner that define `register(app)`.
_PLANNER_COMMANDS = (
    "planner.cli.cost",
    "planner.cli.plan",
    "planner.cli.evaluate",
    "planner.cli.run",
    "planner.cli.serve",
)


_REGISTERED: list[bool] = []


@app.callback()
def _root() -> None:
    """Plan, predict and run compute-optimal test-time scaling."""


@app.command()
def version() -> None:
    """Print the installed version."""
    from planner import __version__

    typer.echo(__version__)


def _register_all() -> None:
    """Add every command once (main may be called many times in one process, as tests do)."""
    if _REGISTERED:
        return
    _REGISTERED.append(True)
    for module_name in _PLANNER_COMMANDS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue
        module.register(app)
    for ep in entry_points(group="ttsplan.commands"):
        ep.load()(app)


def fail(message: str) -> None:
    """Print one line on stderr and exit with code 2."""
    sys.stderr.write(f"error: {message.splitlines()[0] if message else 'bad input'}\n")
    raise SystemExit(2)


def flags_of(group, argv: list[str]) -> dict[str, str]:
    """Parameter name -> flag of the (click) subcommand that argv invokes ({} when none)."""
    command = group
    for token in argv:
        if not hasattr(command, "commands"):
            break
        command = command.commands.get(token, command)
    if command is group:
        return {}
    return {
        p.name: p.opts[0]
        for p in command.params
        if p.param_type_name == "option" and p.opts and p.opts[0].startswith("--")
    }


def with_flags(message: str, flags: dict[str, str]) -> str:
    """Library errors name the parameter first ("n: must be ..."); on the command line it is the flag."""
    name, sep, rest = message.partition(":")
    return f"{flags[name]}:{rest}" if sep and name in flags else message


def main(argv: list[str] | None = None) -> None:
    _register_all()
    command = typer.main.get_command(app)
    try:
        result = command.main(args=argv, prog_name="ttsplan", standalone_mode=False)
    except UserError as exc:
        fail(with_flags(str(exc), flags_of(command, argv if argv is not None else sys.argv[1:])))
    except OSError as exc:  # the file system refused (full disk, no permission): say which file
        where = exc.filename if exc.filename is not None else "a file"
        fail(f"cannot read or write {where}: {exc.strerror or type(exc).__name__}")
    except typer.Abort:
        sys.stderr.write("aborted\n")
        raise SystemExit(130) from None
    except typer.TyperException as exc:  # click's usage and parameter errors
        if type(exc).__name__ == "NoArgsIsHelpError":
            sys.stdout.write(exc.ctx.get_help() + "\n")
            raise SystemExit(0) from None
        fail(exc.format_message())
    raise SystemExit(result if isinstance(result, int) else 0)


if __name__ == "__main__":
    main()
