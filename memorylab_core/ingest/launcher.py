"""Run one training command: output streamed to a log, a time limit, and clean kills.

The limit (:class:`Deadline`) is wall seconds, or, for a training whose budget is CPU seconds (the cpu
profile), CPU seconds of the command's process group per usable CPU: a run that other load slows
down gets the longer wall time it needs (slow is not hung), while one that stops using the CPU is
killed as hung.

The command runs in a session (and so a process group) of its own. A timeout or an interrupt
therefore reaches everything it started -- torch.compile workers, dataloader processes, a shell's
children -- and not just the process we spawned: SIGTERM to the group, a grace period, then SIGKILL
to the group. After a normal exit, stragglers left in the group are killed the same way, so no
process of a finished run outlives it.

SIGINT (Ctrl-C), SIGTERM and SIGHUP (a closed terminal) sent to MemoryLab while the command runs kill the
group and raise :class:`Interrupted`; the caller then records nothing. Because the child is in its own session, a
terminal's Ctrl-C reaches only MemoryLab, which is what makes that ordering reliable.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

KILL_GRACE_S = 10.0
_POLL_S = 0.2
_READ_BYTES = 65536
CHECK_S = 10.0  # cpu clock: after the wall limit, how often the group's CPU time is read
HUNG_CPU_RATE = 0.02  # cpu clock: under 2 % of one CPU over a check interval, the run is hung
MIN_CPU_SHARE = 0.1  # cpu clock: never more than limit / 0.1 wall seconds (10x), whatever the CPU use


# The signals that end a run: Ctrl-C, a kill, and a closed terminal (the trainer runs in a session of its own,
# so a hangup would not reach it and it would train on, orphaned).
TRAPPED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Interrupted(Exception):
    """MemoryLab received SIGINT, SIGTERM or SIGHUP during the run; the command's process group is dead."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        """The conventional shell exit code: 128 + signal number (130 for SIGINT, 143 for SIGTERM, 129 for SIGHUP)."""
        return 128 + self.signum


@dataclass(frozen=True)
class LaunchResult:
    """How the command ended."""

    returncode: int  # negative: killed by that signal (subprocess convention)
    timed_out: bool
    duration_s: float
    pid: int
    stopped: bool = False  # killed because ``should_stop`` asked (an early abort), not for the time limit

    @property
    def signal_name(self) -> str | None:
        if self.returncode >= 0:
            return None
        try:
            return signal.Signals(-self.returncode).name
        except ValueError:
            return f"signal {-self.returncode}"


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask; os.cpu_count() where there is none)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def group_cpu_seconds(pgid: int) -> float | None:
    """User + system CPU seconds of every live process in the group (with their waited-for children),
    from /proc; None where there is no /proc (then the limit is wall seconds)."""
    try:
        entries = [e.name for e in os.scandir("/proc") if e.name.isdigit()]
    except OSError:
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in entries:
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone, or not ours to read
        if int(fields[2]) == pgid:  # fields after "(comm)": state ppid pgrp ... utime(11) stime cutime cstime
            total += sum(int(x) for x in fields[11:15])
    return total / ticks


@dataclass
class Deadline:
    """When a command has had its time. ``clock="wall"``: ``timeout_s`` after the start. ``clock="cpu"``:
    from ``timeout_s`` wall seconds on, every :data:`CHECK_S` the group's CPU time is read; the command
    is stopped once it has used ``timeout_s`` CPU seconds per usable CPU (what an unhindered run would
    use in ``timeout_s``), or when it used under :data:`HUNG_CPU_RATE` of a CPU since the last check
    (hung), or at ``timeout_s / MIN_CPU_SHARE`` wall seconds."""

    started: float
    timeout_s: float
    clock: str = "wall"
    pgid: int | None = None
    next_check: float = 0.0
    last: tuple[float, float] | None = None  # (time, group CPU seconds) at the previous check

    def __post_init__(self) -> None:
        self.next_check = self.started + self.timeout_s

    def expired(self, now: float) -> bool:
        """Whether to stop the command now (cheap before the wall limit: no /proc reads)."""
        if now < self.next_check:
            return False
        if self.clock != "cpu" or self.pgid is None or now - self.started >= self.timeout_s / MIN_CPU_SHARE:
            return True
        cpu = group_cpu_seconds(self.pgid)
        if cpu is None or cpu / usable_cpus() >= self.timeout_s:
            return True
        if self.last is not None and cpu - self.last[1] < HUNG_CPU_RATE * (now - self.last[0]):
            return True
        self.last, self.next_check = (now, cpu), now + CHECK_S
        return False


class _SignalTrap:
    """Turns the first trapped signal into :class:`Interrupted`; later ones are only remembered, so
    a second Ctrl-C cannot cut the cleanup short and leave the process group alive."""

    def __init__(self) -> None:
        self.armed = True
        self.received: int | None = None

    def __call__(self, signum: int, frame: object) -> None:
        if self.received is None:
            self.received = signum
        if self.armed:
            self.armed = False
            raise Interrupted(signum)


@contextlib.contextmanager
def _trapped_signals() -> Iterator[_SignalTrap]:
    trap = _SignalTrap()
    if threading.current_thread() is not threading.main_thread():
        yield trap  # signal handlers can only be installed from the main thread
        return
    previous = {sig: signal.signal(sig, trap) for sig in TRAPPED}
    try:
        yield trap
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _signal_group(pgid: int, sig: int) -> bool:
    """Send ``sig`` to a process group; False when the group no longer exists."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False
    return True


def _drain(fd: int, sink: Callable[[bytes], None], wait_s: float) -> bool:
    """Read what the pipe has within ``wait_s``; False at end of file."""
    ready, _, _ = select.select([fd], [], [], wait_s)
    if not ready:
        return True
    data = os.read(fd, _READ_BYTES)
    if not data:
        return False
    sink(data)
    return True


def kill_group(proc: subprocess.Popen, grace_s: float, sink: Callable[[bytes], None] | None = None) -> None:
    """SIGTERM the process group, wait up to ``grace_s`` (still draining output), then SIGKILL it."""
    pgid = proc.pid
    _signal_group(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    fd = proc.stdout.fileno() if proc.stdout else None
    open_pipe = fd is not None
    while proc.poll() is None and time.monotonic() < deadline:
        if open_pipe and sink is not None:
            open_pipe = _drain(fd, sink, _POLL_S)
        else:
            time.sleep(_POLL_S / 4)
    _signal_group(pgid, signal.SIGKILL)
    proc.wait()


def launch(command: Sequence[str], *, env: Mapping[str, str], cwd: Path, log_path: Path, timeout_s: float,
           grace_s: float = KILL_GRACE_S, on_output: Callable[[bytes], None] | None = None,
           clock: str = "wall", should_stop: Callable[[], bool] | None = None) -> LaunchResult:
    """Run ``command``, appending its stdout+stderr to ``log_path``; kill its group once its
    :class:`Deadline` of ``timeout_s`` on ``clock`` ("wall" or "cpu") has passed, or as soon as
    ``should_stop()`` says so after a chunk of output (the early abort).

    Raises :class:`Interrupted` (after killing the group) on SIGINT/SIGTERM/SIGHUP, and ``OSError`` when the
    command cannot be started.
    """
    started = time.monotonic()
    proc: subprocess.Popen | None = None
    with open(log_path, "ab") as log, _trapped_signals() as trap:
        def sink(data: bytes) -> None:
            log.write(data)
            log.flush()
            if on_output is not None:
                on_output(data)

        try:
            proc = subprocess.Popen(list(command), cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL,
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
            ended = _pump(proc, sink, Deadline(started, timeout_s, clock, proc.pid), should_stop)
            trap.armed = False
            if ended:
                kill_group(proc, grace_s, sink)
            else:
                _finish_stragglers(proc, grace_s)
        except Interrupted:
            trap.armed = False
            if proc is not None:
                kill_group(proc, grace_s, sink)
            raise
        finally:
            trap.armed = False
            if proc is not None and proc.poll() is None:  # an error in our own loop: never leave the run behind
                kill_group(proc, 0.0)
            if proc is not None and proc.stdout:
                proc.stdout.close()
        if trap.received is not None:  # a signal that arrived while we were already killing or cleaning up
            raise Interrupted(trap.received)
    return LaunchResult(proc.returncode, ended == "timeout", time.monotonic() - started, proc.pid, ended == "stopped")


@contextlib.contextmanager
def deferred_signals() -> Iterator[None]:
    """Hold SIGINT/SIGTERM/SIGHUP while recording a finished run, then raise :class:`Interrupted` if one came.

    A run is either recorded completely or not at all; an interrupt during the write takes effect
    right after it.
    """
    trap = _SignalTrap()
    trap.armed = False
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, trap) for sig in TRAPPED}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if trap.received is not None:
        raise Interrupted(trap.received)


def _pump(proc: subprocess.Popen, sink: Callable[[bytes], None], deadline: Deadline,
          should_stop: Callable[[], bool] | None = None) -> str | None:
    """Copy output until the command exits: ``"timeout"`` if the deadline came first, ``"stopped"`` if
    ``should_stop`` asked for it, else None."""
    fd = proc.stdout.fileno()
    open_pipe = True
    while proc.poll() is None:
        now = time.monotonic()
        if deadline.expired(now):
            return "timeout"
        remaining = max(deadline.next_check - now, 0.01)
        if open_pipe:
            open_pipe = _drain(fd, sink, min(_POLL_S, remaining))
        else:
            time.sleep(min(_POLL_S, remaining))
        if should_stop is not None and should_stop():
            return "stopped"
    # The leader exited: take what is already buffered, without waiting on children holding the pipe.
    while open_pipe and _drain(fd, sink, 0.0):
        ready, _, _ = select.select([fd], [], [], 0.0)
        if not ready:
            break
    return None


def _finish_stragglers(proc: subprocess.Popen, grace_s: float) -> None:
    """Processes the command left in its group after exiting get SIGTERM, then SIGKILL."""
    if _signal_group(proc.pid, 0):
        _signal_group(proc.pid, signal.SIGTERM)
        time.sleep(min(grace_s, 0.5))
        _signal_group(proc.pid, signal.SIGKILL)
