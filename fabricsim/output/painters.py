"""Pictures drawn by worker processes while the run they picture goes on.

A short run's pictures cost about as much as its imports and its trials together, nearly all of it in
matplotlib: importing it, laying out and rendering text. ``Painters`` forks a worker before the run;
it imports matplotlib and the plot modules while the parent imports the runner and runs the trials,
then forks the other workers, which so import nothing again. At the end each worker draws the
pictures it is handed, the next one going to whichever worker is free. A picture is a plot function
called with numbers, so its PNG is the same bytes whichever process draws it. Without workers (one
core; a parent with threads, which must not fork; not Linux) ``draw`` draws in this process, as
``draw_here`` does.

The workers end with their parent: they leave Ctrl-C to it, it ends them (and waits until they are
gone) on an error or a signal, before the folder they draw into is removed, and a worker whose parent
is gone reads the end of its pipe and exits.
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
import signal
import sys
import threading
import traceback
from contextlib import suppress
from multiprocessing.connection import Connection, wait

PAINTERS = 2  # four pictures, two of them costlier: two workers share them evenly enough
JOIN_TIMEOUT_S = 5

# (module, function, arguments): the parent names what to draw without importing matplotlib itself
Picture = tuple[str, str, tuple]
RUN_PICTURE_MODULES = ("fabricsim.output.plots", "fabricsim.output.breakdown_plot")  # what draws a run's pictures
RUN_WARM_UP: Picture = ("fabricsim.output.plots", "warm_up", ())


class PictureError(RuntimeError):
    """A picture a worker could not draw: its error in one line, the worker's traceback as the cause."""


class _WorkerTraceback(Exception):
    def __str__(self) -> str:
        return f"in the painter process:\n{self.args[0]}"


def draw_here(pictures: list[Picture]) -> None:
    """Draw the pictures in this process, in order."""
    for picture in pictures:
        _draw(picture)


def _draw(picture: Picture) -> None:
    module, function, arguments = picture
    getattr(importlib.import_module(module), function)(*arguments)


def can_fork() -> bool:
    """Workers pay off only with a second core, and fork is safe only from a process with one thread,
    on Linux (macOS's system libraries are not safe across fork: spawn is its default)."""
    return sys.platform == "linux" and len(os.sched_getaffinity(0)) > 1 and threading.active_count() == 1


class Painters:
    """`count` worker processes that draw what ``draw`` hands them, once `modules` are imported and
    `warm_up` called (in the first worker, while it waits for the run); none when `modules` is empty
    or ``can_fork()`` is False. A context manager: leaving it lets the workers go, or ends them at
    once if it is left by an exception."""

    def __init__(self, modules: tuple[str, ...], warm_up: Picture | None = None, count: int = PAINTERS) -> None:
        self._connections: list[Connection] = []
        self._first = None  # the first worker; the others are its children
        if not modules or not can_fork():
            return
        context = multiprocessing.get_context("fork")
        pipes = [context.Pipe() for _ in range(count)]
        self._connections = [ours for ours, _ in pipes]
        self._first = context.Process(target=_first_painter, name="fabricsim-painter", daemon=True,
                                      args=([theirs for _, theirs in pipes], modules, warm_up, self._connections))
        interrupt = signal.signal(signal.SIGINT, signal.SIG_IGN)  # the worker is born ignoring Ctrl-C
        try:
            self._first.start()
        finally:
            signal.signal(signal.SIGINT, interrupt)
        for _, theirs in pipes:
            theirs.close()

    def __enter__(self) -> Painters:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(end=exc_type is not None)

    def draw(self, pictures: list[Picture]) -> None:
        """Draw the pictures, the first ones first, and return once every one is written; a picture
        that cannot be drawn raises PictureError, once the workers are ended."""
        if self._first is None:
            draw_here(pictures)
            return
        try:
            self._hand_out(list(pictures))
        except BaseException:  # an error, Ctrl-C or SIGTERM: no worker may go on writing
            self.close(end=True)
            raise

    def _hand_out(self, waiting: list[Picture]) -> None:
        _check(_receive(self._connections[0], "importing the plot modules"))  # the first worker is ready
        idle = list(reversed(self._connections))
        busy: dict[Connection, Picture] = {}
        while waiting or busy:
            while waiting and idle:
                connection, picture = idle.pop(), waiting.pop(0)
                busy[connection] = picture
                try:
                    connection.send(picture)
                except OSError:
                    raise PictureError(f"{_name(picture)}: the painter process had ended") from None
            for connection in wait(list(busy)):
                picture = busy.pop(connection)
                _check(_receive(connection, _name(picture)), _name(picture))
                idle.append(connection)

    def close(self, end: bool = False) -> None:
        """Let the workers go (they exit at the end of their pipes, the first once the others have), or
        `end` them at once."""
        first, self._first = self._first, None
        if first is not None and end:
            first.terminate()  # which ends the others, and reaps them, before it exits
        for connection in self._connections:
            connection.close()
        self._connections = []
        if first is not None:
            first.join(JOIN_TIMEOUT_S)
            if first.is_alive():  # stuck in a long render: no worker may outlive the folder it draws into
                first.kill()
                first.join()


def _name(picture: Picture) -> str:
    return f"{picture[0]}.{picture[1]}"


def _receive(connection: Connection, doing: str):
    try:
        return connection.recv()
    except (EOFError, OSError):
        raise PictureError(f"{doing}: the painter process ended") from None


def _check(failure: str | None, doing: str = "importing the plot modules") -> None:
    if failure is not None:
        raise PictureError(f"{doing}: {failure.strip().splitlines()[-1]}") from _WorkerTraceback(failure)


def _first_painter(connections: list[Connection], modules: tuple[str, ...], warm_up: Picture | None,
                   parents: list[Connection]) -> None:
    """The first worker: import `modules`, call `warm_up`, fork a worker for each further connection,
    say it is ready (None, or the traceback of what failed), then draw what its own connection brings.
    SIGTERM ends the workers it forked, and it reaps them, before it exits."""
    forked: list[int] = []

    def end(signum, frame) -> None:
        for pid in forked:
            with suppress(OSError):  # reaped already, at the end of the pipe
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
        os._exit(1)

    signal.signal(signal.SIGTERM, end)  # Ctrl-C it ignores from birth: it reaches the parent, which ends the workers
    for connection in parents:  # the parent's ends: held here, they would hide the parent's exit
        connection.close()
    try:
        for module in modules:
            importlib.import_module(module)
        if warm_up is not None:
            _draw(warm_up)
        for index, connection in enumerate(connections[1:], 1):
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})  # until the new worker is in `forked`
            pid = os.fork()
            if pid == 0:  # a further worker, the modules already imported
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
                for other in connections[:index] + connections[index + 1:]:
                    other.close()
                try:
                    _serve(connection)
                finally:
                    os._exit(0)
            forked.append(pid)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
            connection.close()
    except Exception:
        with suppress(OSError):  # the parent is gone
            connections[0].send(traceback.format_exc())
        return
    try:
        connections[0].send(None)
    except OSError:  # the parent is gone: nothing to draw
        return
    _serve(connections[0])
    for pid in forked:
        os.waitpid(pid, 0)


def _serve(connection: Connection) -> None:
    """Draw each picture the pipe brings and answer None, or the traceback of its error, until the
    end of the pipe."""
    while True:
        try:
            picture = connection.recv()
        except EOFError:
            return
        try:
            _draw(picture)
        except Exception:
            connection.send(traceback.format_exc())
        else:
            connection.send(None)
