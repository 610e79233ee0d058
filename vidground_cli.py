"""The ``vidground`` console script's entry point: a light top-level module, above the layers (the core package
``vidground`` imports none of the others, and ``pipelines``' own ``__init__`` is what is slow to import), so that a
Ctrl-C while the command line's modules are still being imported (pydantic, numpy and the backends' registries: about
half a second) ends with the one line and exit status 130 (143 for SIGTERM) the command line promises, not a traceback. Importing this
module imports nothing of vidground's; ``python -m pipelines.cli`` runs the same ``main``."""

from __future__ import annotations

import os
import signal
import sys
import threading
from typing import Any

#: the exit statuses of a command ended by a Ctrl-C (130) or SIGTERM (143)
_INTERRUPTED = (128 + signal.SIGINT, 128 + signal.SIGTERM)


def main(argv: list[str] | None = None) -> int:
    """``pipelines.cli.main(argv)``, importing it first; a Ctrl-C before the command installs its own handling
    (during the imports, or while the command line is parsed) is the interrupted line and 130.

    Run as the console script (``argv`` None), a command ended by a Ctrl-C or SIGTERM while other threads still run
    (a second Ctrl-C abandons an eval's workers, which may be inside torch) ends the process here, through
    :func:`_exit_now`: finalising the interpreter under them aborted it (``terminate called without an active
    exception``, exit 134). Called with ``argv`` (a program, a test), it returns as before."""
    status = _main(argv)
    if argv is None and status in _INTERRUPTED and _other_threads():
        _exit_now(status)
    return status


def _other_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t is not threading.main_thread() and t.is_alive()]


def _exit_now(status: int) -> None:
    """End the process with ``status`` without finalising the interpreter: the ``atexit`` handlers run (logging's
    flush among them) and stdout and stderr are flushed, then ``os._exit``. What an eval keeps is on disk already
    (each result appended and fsync'd, each description committed to the cache); the abandoned threads' work is
    what a second Ctrl-C gives up. A further Ctrl-C or SIGTERM meanwhile ends it at once, with the same status."""
    def again(signum: int, frame: object) -> None:
        os._exit(status)

    try:
        if threading.current_thread() is threading.main_thread():
            for n in (signal.SIGINT, signal.SIGTERM):
                signal.signal(n, again)
        import atexit

        atexit._run_exitfuncs()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                if stream is not None:
                    stream.flush()
            except Exception:  # a closed or full stdout was said by the command; nothing more to say
                pass
        os._exit(status)


def _main(argv: list[str] | None) -> int:
    """:func:`main` up to the command's end.

    While importing, SIGINT goes through a handler that notes it: a Ctrl-C that lands in a C extension's
    initialisation comes out as an ImportError, not a KeyboardInterrupt (numpy: 'PyCapsule_Import could not import
    module "datetime"', then its 'Importing the numpy C-extensions failed' advice)."""
    interrupted: list[int] = []

    def note(signum: int, frame: object) -> None:
        interrupted.append(signum)
        raise KeyboardInterrupt

    # SIGTERM (Slurm, Kubernetes, timeout) as a Ctrl-C: said by name, exit 143
    python_own: dict[int, Any] = {signal.SIGINT: signal.default_int_handler, signal.SIGTERM: signal.SIG_DFL}
    ours = [n for n, own in python_own.items()
            if threading.current_thread() is threading.main_thread() and signal.getsignal(n) is own]
    try:
        try:
            for n in ours:
                signal.signal(n, note)
            from pipelines.cli import main as run
        finally:
            for n in ours:  # Python's own again: the command installs its handling in its place
                signal.signal(n, python_own[n])
        return run(argv)
    except KeyboardInterrupt:
        pass
    except Exception:
        if not interrupted:  # a broken install says so as before
            raise
    signum = interrupted[0] if interrupted else signal.SIGINT
    print("vidground: interrupted" + ("" if signum == signal.SIGINT else f" ({signal.Signals(signum).name})"),
          file=sys.stderr)
    return 128 + signum


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
