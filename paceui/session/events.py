"""Events of a session and a small thread-safe bus (progress coalesced per subscriber).

The fit thread only *emits*. A subscriber either pulls (:meth:`Subscription.get`, :meth:`poll`,
iteration) or gives a callback, which runs in the emitting thread and must be quick and
thread-safe (e.g. Textual's ``post_message``). A pull subscriber keeps at most one pending
:class:`Progress` between two other events: a newer one replaces it, so a slow consumer never
builds a backlog; other events are kept in order (bounded by ``maxlen``, oldest dropped and counted).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Iterable, Iterator

from paceui.fit.metrics import FitMetrics


@dataclass(frozen=True)
class Event:
    """Base class; ``kind`` names the event, ``time`` is ``time.monotonic()`` at emission (s)."""

    kind: ClassVar[str] = "event"
    time: float = field(default_factory=time.monotonic, kw_only=True, compare=False)


@dataclass(frozen=True)
class FitStarted(Event):
    """The background fit started (or resumed after stop / finish / error)."""

    kind: ClassVar[str] = "started"
    total_iterations: int
    ladder_step: int
    cycle: int


@dataclass(frozen=True)
class StageChanged(Event):
    """A cold-start stage began (``stage``: what the fit thread does before it can record iterations:
    preparing data, neighbour lists, compiling kernels, first iteration) or ended (``stage`` empty;
    ``elapsed``: seconds the ended stage took). ``done``/``total``: progress where known."""

    kind: ClassVar[str] = "stage"
    stage: str
    elapsed: float = 0.0
    done: int | None = None
    total: int | None = None


@dataclass(frozen=True)
class Progress(Event):
    """One record: an optimizer iteration, or the initial state of a cycle (``initial``)."""

    kind: ClassVar[str] = "progress"
    total_iterations: int
    ladder_step: int
    cycle: int
    iteration: int
    loss: float
    nfuncs: int
    train: FitMetrics
    test: FitMetrics | None
    initial: bool


@dataclass(frozen=True)
class LadderStepChanged(Event):
    kind: ClassVar[str] = "ladder_step"
    ladder_step: int
    nfuncs: int


@dataclass(frozen=True)
class CycleChanged(Event):
    kind: ClassVar[str] = "cycle"
    ladder_step: int
    cycle: int


@dataclass(frozen=True)
class Paused(Event):
    kind: ClassVar[str] = "paused"
    total_iterations: int


@dataclass(frozen=True)
class Resumed(Event):
    kind: ClassVar[str] = "resumed"
    total_iterations: int


@dataclass(frozen=True)
class Stopped(Event):
    """The fit halted: ``reason`` is a key (user, iterations, maxiter, converged, ...), ``message`` says why."""

    kind: ClassVar[str] = "stopped"
    reason: str
    message: str
    total_iterations: int
    finished: bool


@dataclass(frozen=True)
class Failed(Event):
    """An iteration or a command raised; the fit is halted, the session stays usable."""

    kind: ClassVar[str] = "error"
    message: str
    traceback: str = ""


@dataclass(frozen=True)
class CallbackFailed(Event):
    """A user callback raised at an iteration (reported when it happens; the fit goes on)."""

    kind: ClassVar[str] = "callback_error"
    message: str


@dataclass(frozen=True)
class Changed(Event):
    """A command changed the fit: ``action`` (randomize, extend_ladder, settings) and what it did."""

    kind: ClassVar[str] = "changed"
    action: str
    message: str


@dataclass(frozen=True)
class Saved(Event):
    kind: ClassVar[str] = "saved"
    path: str
    generation: int
    total_iterations: int
    autosave: bool


class Subscription:
    """One subscriber's view of the bus (see module doc); close it when done."""

    def __init__(self, bus: "EventBus", kinds: frozenset[str] | None, callback: Callable[[Event], Any] | None,
                 maxlen: int) -> None:
        self._bus, self.kinds, self.callback, self.maxlen = bus, kinds, callback, maxlen
        self._queue: deque[Event] = deque()
        self._cv = threading.Condition()
        self.dropped = 0          # events lost to ``maxlen`` (never progress: that is coalesced)
        self.coalesced = 0        # progress events replaced by a newer one
        self.callback_errors = 0  # exceptions raised by the callback (swallowed)
        self.closed = False

    def _deliver(self, ev: Event) -> None:
        if self.kinds is not None and ev.kind not in self.kinds:
            return
        if self.callback is not None:
            try:
                self.callback(ev)
            except Exception:  # a front end must never break the fit thread
                self.callback_errors += 1
            return
        with self._cv:
            q = self._queue
            if isinstance(ev, Progress) and q and isinstance(q[-1], Progress):
                q[-1] = ev
                self.coalesced += 1
            else:
                if len(q) >= self.maxlen:
                    q.popleft()
                    self.dropped += 1
                q.append(ev)
            self._cv.notify_all()

    def get(self, timeout: float | None = None) -> Event | None:
        """The next event, waiting up to ``timeout`` seconds (None: forever); None on timeout/close."""
        with self._cv:
            if not self._cv.wait_for(lambda: self._queue or self.closed, timeout):
                return None
            return self._queue.popleft() if self._queue else None

    def poll(self) -> list[Event]:
        """All pending events, without waiting."""
        with self._cv:
            out = list(self._queue)
            self._queue.clear()
            return out

    def wait_for(self, kind: str | tuple[str, ...], timeout: float | None = None) -> Event | None:
        """Consume events until one of ``kind`` arrives (returned) or ``timeout`` s pass (None)."""
        kinds = (kind,) if isinstance(kind, str) else kind
        end = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if end is None else max(end - time.monotonic(), 0.0)
            ev = self.get(left)
            if ev is None or ev.kind in kinds:
                return ev

    def __iter__(self) -> Iterator[Event]:
        """Events until the subscription is closed."""
        while (ev := self.get()) is not None:
            yield ev

    def close(self) -> None:
        self._bus._remove(self)
        with self._cv:
            self.closed = True
            self._cv.notify_all()

    def __enter__(self) -> "Subscription":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class EventBus:
    """Fan-out of events to subscriptions; :meth:`emit` never blocks on a consumer."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subs: tuple[Subscription, ...] = ()

    def subscribe(self, callback: Callable[[Event], Any] | None = None, *, kinds: Iterable[str] | None = None,
                  maxlen: int = 10_000) -> Subscription:
        """A new subscription: pull events from it, or have ``callback(event)`` called in the emitting thread."""
        sub = Subscription(self, None if kinds is None else frozenset(kinds), callback, maxlen)
        with self._lock:
            self._subs = self._subs + (sub,)
        return sub

    def _remove(self, sub: Subscription) -> None:
        with self._lock:
            self._subs = tuple(s for s in self._subs if s is not sub)

    @property
    def n_subscribers(self) -> int:
        return len(self._subs)

    def emit(self, ev: Event) -> None:
        """Deliver ``ev`` to every subscription (the tuple is replaced, never changed: no lock needed)."""
        for sub in self._subs:
            sub._deliver(ev)
