"""The admin commands: ``mailgate <command>``. The only package that ends the process.

Each command group is a module of this package with ``ORDER`` (its place in
``mailgate --help``) and ``register(sub)``; ``main`` finds the modules by itself,
so a new group is a new module, not an edit here. A command is thin: it parses,
calls a function of ``mailgate.admin`` (or of the capability's package — the web
desk calls the same) and prints.

Every error a user can cause is one line on stderr and an exit status, never a
traceback: 0 done, 1 a command that could not be carried out, 2 wrong usage,
75 (EX_TEMPFAIL) nothing was recorded and the sender should retry, 78
(EX_CONFIG) the config file is wrong. ``mailgate ingest`` answers 75 for every
failure that leaves a mail unrecorded, so an MTA piping into it keeps the mail.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys
from collections.abc import Sequence
from types import ModuleType

from mailgate import __version__, logs
from mailgate.cli.common import EX_CONFIG, EX_FAIL, EX_OK, EX_TEMPFAIL, EX_USAGE
from mailgate.errors import ConfigError, MailgateError, TemporaryFailure, UsageError

log = logging.getLogger("mailgate.cli")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return EX_USAGE
    logs.setup(args.log_format, logging.DEBUG if args.verbose else logging.INFO)
    tempfail_on_error = bool(getattr(args, "tempfail_on_error", False))
    try:
        return int(args.func(args))
    except ConfigError as exc:
        _error(f"config error: {exc}")
        return EX_TEMPFAIL if tempfail_on_error else EX_CONFIG
    except TemporaryFailure as exc:
        _error(f"temporary failure, nothing was changed: {exc}")
        return EX_TEMPFAIL
    except _database_unavailable() as exc:
        _error(f"temporary failure, database unavailable: {exc}")
        return EX_TEMPFAIL
    except UsageError as exc:
        _error(str(exc))
        return EX_FAIL
    except MailgateError as exc:
        _error(str(exc))
        return EX_FAIL
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EX_OK
    except Exception as exc:
        if not tempfail_on_error:
            raise
        # The pipe entry must never make an MTA bounce a mail because of our bug.
        log.exception("ingest failed")
        _error(f"internal error, the mail was not recorded: {type(exc).__name__}: {exc}")
        return EX_TEMPFAIL


def _database_unavailable() -> tuple[type[BaseException], ...]:
    """The store's "database unavailable" errors, imported only when a command failed."""
    from mailgate.store import UNAVAILABLE

    return UNAVAILABLE


def _error(text: str) -> None:
    print(f"mailgate: {text}", file=sys.stderr)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mailgate", description="Email-driven ticketing gateway.")
    parser.add_argument(
        "--config",
        metavar="PATH",
        help="config file (default: $MAILGATE_CONFIG, then /etc/mailgate/mailgate.toml)",
    )
    parser.add_argument("--log-format", choices=("text", "json"), default="text")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--version", action="version", version=f"mailgate {__version__}")
    sub = parser.add_subparsers(metavar="COMMAND")
    for module in command_modules():
        module.register(sub)
    return parser


def command_modules() -> list[ModuleType]:
    """Every command group of this package, in ``ORDER`` (then name) order."""
    found = []
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(module, "register"):
            found.append(module)
    return sorted(found, key=lambda m: (getattr(m, "ORDER", 100), m.__name__))
