"""How the command line ends: exit codes, one-line errors, Ctrl-C, closed pipes, --quiet and --debug.

  0    success
  1    unexpected failure (a bug: rerun with --debug for the traceback and report it)
  2    user error: a bad file, folder, flag or config value; the line says what and how to fix it
  130  interrupted (Ctrl-C, SIGINT); 143 terminated (SIGTERM). Unfinished output is removed;
       a pretraining run continues from its last checkpoint with --resume

Click's own handling is bypassed on purpose: it turns a closed stdout pipe into exit 1, Ctrl-C into a
silent 130 and its parameter errors into a boxed usage message; here each becomes one line.
"""

from __future__ import annotations

import errno
import os
import signal
import sys
import traceback
from typing import Callable, List

from bertcli.errors import UserError
from bertcli.folder_lock import release_all

HELP = ("Exit codes: 0 ok, 1 unexpected failure (rerun with --debug), 2 bad input (the message names "
        "the file, line or key and the fix), 130 interrupted (Ctrl-C), 143 terminated (SIGTERM). "
        "Data goes to stdout, messages and progress to stderr.")

# Filesystem errors that come from what the user asked for (a path), not from a bug: one line, exit 2.
FILESYSTEM_FIXES = {
    errno.ENAMETOOLONG: "use a shorter name",
    errno.ENOTDIR: "a part of the path is a file, not a folder; choose another path",
    errno.EACCES: "no permission; choose a place you can read and write, or fix its permissions",
    errno.EPERM: "no permission; choose a place you can read and write, or fix its permissions",
    errno.EROFS: "the file system is read-only; choose a writable place",
    errno.ENOSPC: "the disk is full; free space or choose another disk",
    errno.EDQUOT: "the disk quota is exhausted; free space or choose another disk",
    errno.EISDIR: "it is a folder; give a file",
    errno.EEXIST: "a file of that name stands where a folder is needed; choose another path",
    errno.ENOENT: "not found; check the path",
    errno.ELOOP: "too many symbolic links; check the path",
}
GLOBAL_FLAGS = {"--quiet": "quiet", "-q": "quiet", "--debug": "debug"}


class Terminated(BaseException):
    """SIGTERM, raised in the main thread so that `finally` blocks (staged folders) clean up."""


def _on_sigterm(signum, frame) -> None:
    raise Terminated()


def split_global_flags(argv: List[str]) -> tuple[List[str], dict[str, bool]]:
    """Take --quiet/-q and --debug out of argv wherever they stand (before `--`)."""
    flags = {"quiet": False, "debug": False}
    rest: List[str] = []
    for i, token in enumerate(argv):
        if token == "--":
            rest += argv[i:]
            break
        if token in GLOBAL_FLAGS:
            flags[GLOBAL_FLAGS[token]] = True
        else:
            rest.append(token)
    return rest, flags


def one_line(text: str) -> str:
    return " ".join(str(text).split())


def _fail(message: str, code: int) -> None:
    print(f"error: {one_line(message)}", file=sys.stderr)
    sys.stderr.flush()
    sys.exit(code)


def _quiet_stdout() -> None:
    """The reader of stdout went away (`| head`): point stdout at /dev/null so that the flush at
    exit cannot fail again, and end with 0 as `yes | head` does."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass
    sys.exit(0)


def run_cli(app, argv: List[str]) -> None:
    """Run the Typer `app` on `argv` and exit with one of the documented codes."""
    import typer.main
    from typer import exceptions as typer_exc
    from typer._click import exceptions as click_exc

    from bertcli.console import console

    argv, flags = split_global_flags(argv)
    command = typer.main.get_command(app)
    command._main_shell_completion({}, "bertcli", None)  # exits here when the shell asks for completions
    previous_quiet = console.quiet
    console.quiet = flags["quiet"]
    previous_term = _install(signal.SIGTERM, _on_sigterm)
    try:
        code = _invoke(command, argv)
        sys.stdout.flush()
    except click_exc.NoArgsIsHelpError as exc:
        exc.ctx and print(exc.ctx.get_help(), file=sys.stderr)
        code = 2
    except click_exc.UsageError as exc:
        where = exc.ctx.command_path if exc.ctx is not None else "bertcli"
        message = exc.format_message().rstrip(".")
        _fail(f"{where}: {message[:1].lower()}{message[1:]}; see `{where} --help`", 2)
    except click_exc.ClickException as exc:
        _fail(exc.format_message(), exc.exit_code)
    except typer_exc.Exit as exc:
        code = exc.exit_code
    except UserError as exc:
        _debug(flags)
        _fail(str(exc), exc.exit_code)
    except (KeyboardInterrupt, typer_exc.Abort):
        _debug(flags)
        _fail("interrupted (Ctrl-C); unfinished output was removed, finished checkpoints are kept "
              "(continue a pretraining run with --resume)", 130)
    except Terminated:
        _debug(flags)
        _fail("terminated (SIGTERM); unfinished output was removed, finished checkpoints are kept "
              "(continue a pretraining run with --resume)", 143)
    except BrokenPipeError:
        _quiet_stdout()
    except OSError as exc:
        if exc.errno == errno.EPIPE:
            _quiet_stdout()
        _debug(flags)
        fix = FILESYSTEM_FIXES.get(exc.errno)
        if fix is None:
            _unexpected(exc, flags)
        name = exc.filename if exc.filename is not None else ""
        _fail(f"{name}: {exc.strerror or exc}; {fix}" if name else f"{exc.strerror or exc}; {fix}", 2)
    except Exception as exc:  # noqa: BLE001  (the last line of defence: one line, exit 1)
        _unexpected(exc, flags)
    finally:
        release_all()  # the command's folder locks (the kernel would drop them at exit anyway)
        console.quiet = previous_quiet
        _install(signal.SIGTERM, previous_term)
    sys.exit(code or 0)


def _invoke(command, argv: List[str]) -> int:
    with command.make_context("bertcli", list(argv)) as ctx:
        command.invoke(ctx)
    return 0


def _install(signum: int, handler: Callable | int | None):
    """Set a signal handler where that is allowed (the main thread); return the previous one."""
    if handler is None:
        return None
    try:
        return signal.signal(signum, handler)
    except ValueError:  # not the main thread (an embedding program); leave signals alone
        return None


def _debug(flags: dict[str, bool]) -> None:
    if flags["debug"]:
        traceback.print_exc(file=sys.stderr)


def _unexpected(exc: BaseException, flags: dict[str, bool]) -> None:
    if flags["debug"]:
        traceback.print_exc(file=sys.stderr)
        _fail(f"unexpected {type(exc).__name__}: {exc}", 1)
    _fail(f"unexpected {type(exc).__name__}: {exc} (a bug in bertcli: rerun with --debug for the traceback "
          f"and report it)", 1)
