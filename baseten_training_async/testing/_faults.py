"""Injected faults: what they do, which requests they hit, and the seeded draw."""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any, Literal, get_args

from ._routes import Route

__all__ = ["DEFERRED_KINDS", "Fault", "FaultKind", "FaultSet"]

FaultKind = Literal[
    "status",
    "latency",
    "drop_before",
    "drop_after_commit",
    "malformed_json",
    "truncated_body",
    "repeat_page_token",
    "empty_page",
    "late_commit",
    "commit_then_drop",
    "commit_then_stall",
    "commit_then_garble",
    "preemption",
]
"""Kinds of injectable faults (see `FakeTrainingAPI.inject`)."""

_REQUIRED = object()
_PARAMS: Mapping[str, Mapping[str, Any]] = {
    "status": {
        "status": _REQUIRED,
        "retry_after": None,
        "retry_after_header": True,
        "retry_after_body": True,
        "message": None,
        "commit": False,
    },
    "latency": {"delay": _REQUIRED, "commit": False},
    "drop_before": {},
    "drop_after_commit": {},
    "malformed_json": {"commit": True, "body": b'{"training_job": {"id": <<not json>>'},
    "truncated_body": {"commit": True},
    "repeat_page_token": {},
    "empty_page": {},
    "late_commit": {"delay": _REQUIRED, "clock": "real"},
    "commit_then_drop": {"delay": 0.0, "clock": "real"},
    "commit_then_stall": {"delay": 0.0, "stall": 30.0, "clock": "real"},
    "preemption": {"after": 1.0},
    "commit_then_garble": {
        "delay": 0.0,
        "clock": "real",
        "status": 200,
        "body": b'{"training_job": {"id": 5}}',
    },
}
_PAGED_KINDS = frozenset({"repeat_page_token", "empty_page"})
DEFERRED_KINDS = frozenset(
    {"late_commit", "commit_then_drop", "commit_then_stall", "commit_then_garble"}
)
"""Kinds whose operation commits on the server's own schedule, apart from the response."""
_CLOCKS = ("real", "fake")
_PREEMPTION_ROUTES = frozenset({Route.CREATE_JOB, Route.RECREATE_JOB})
_KNOWN_ROUTES = frozenset(Route.ALL)


class Fault:
    """A registered fault; returned by `FakeTrainingAPI.inject`.

    Usable as a context manager that removes the fault on exit.

    Attributes:
        kind: The fault kind.
        routes: Operations it applies to (None: every operation).
        probability: Share of matching requests it hits (see `FaultSet.draw`).
        times: Maximum number of firings (None: unlimited).
        params: Kind-specific parameters with defaults filled in.
        fired: How many requests it has hit so far.
    """

    __slots__ = ("_owner", "fired", "kind", "params", "probability", "routes", "times")

    def __init__(
        self,
        owner: FaultSet,
        kind: FaultKind,
        routes: frozenset[str] | None,
        probability: float,
        times: int | None,
        params: dict[str, Any],
    ) -> None:
        self._owner = owner
        self.kind: FaultKind = kind
        self.routes = routes
        self.probability = probability
        self.times = times
        self.params = params
        self.fired = 0

    @property
    def active(self) -> bool:
        """Whether the fault can still fire (registered and not exhausted)."""
        return self in self._owner.faults

    def remove(self) -> None:
        """Unregister the fault (idempotent)."""
        self._owner.remove(self)

    def matches(self, route: str | None) -> bool:
        """Return whether the fault applies to an operation.

        Args:
            route: A `Route` constant (None for unknown paths).

        Returns:
            True when the fault targets that operation.
        """
        return self.routes is None or route in self.routes

    def __enter__(self) -> Fault:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.remove()

    def __repr__(self) -> str:
        routes = "all routes" if self.routes is None else sorted(self.routes)
        return (
            f"Fault({self.kind!r}, routes={routes}, probability={self.probability}, "
            f"times={self.times}, fired={self.fired}, params={self.params})"
        )


class FaultSet:
    """The ordered list of registered faults and the seeded random draw.

    Args:
        seed: Seed of the draw's `random.Random`.
    """

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed)
        self.faults: list[Fault] = []

    def add(
        self,
        kind: str,
        *,
        route: str | Iterable[str] | None,
        probability: float,
        times: int | None,
        params: Mapping[str, Any],
    ) -> Fault:
        """Validate and register a fault.

        Args:
            kind: One of `FaultKind`.
            route: A `Route` constant, several, or None for every route.
            probability: In ``[0, 1]``.
            times: Maximum firings (None: unlimited); must be positive.
            params: Kind-specific parameters.

        Returns:
            The registered fault.

        Raises:
            ValueError: Unknown kind or route, or an out-of-range value.
            TypeError: Missing or unexpected parameters.
        """
        if kind not in get_args(FaultKind):
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {get_args(FaultKind)}")
        if not 0.0 <= probability <= 1.0:
            raise ValueError("probability must be within [0, 1]")
        if times is not None and times < 1:
            raise ValueError("times must be positive (or None for unlimited)")
        if route is None and kind in _PAGED_KINDS:
            route = Route.CHECKPOINT_FILES
        if route is None and kind == "preemption":
            route = (Route.CREATE_JOB, Route.RECREATE_JOB)
        routes: frozenset[str] | None = None
        if route is not None:
            routes = frozenset([route] if isinstance(route, str) else route)
            unknown = routes - _KNOWN_ROUTES
            if unknown:
                raise ValueError(f"unknown route(s) {sorted(unknown)}; use Route constants")
        spec = _PARAMS[kind]
        unexpected = set(params) - set(spec)
        if unexpected:
            raise TypeError(f"unexpected parameter(s) for {kind!r} faults: {sorted(unexpected)}")
        filled: dict[str, Any] = {}
        for name, default in spec.items():
            value = params.get(name, default)
            if value is _REQUIRED:
                raise TypeError(f"{kind!r} faults require the {name!r} parameter")
            filled[name] = value
        if kind == "status":
            status = filled["status"]
            if not isinstance(status, int) or not 100 <= status <= 599:
                raise ValueError("status must be an HTTP status code")
            if status == 429 and filled["retry_after"] is None:
                filled["retry_after"] = 1.0
        if kind in ("latency", *DEFERRED_KINDS) and float(filled["delay"]) < 0:
            raise ValueError("delay must not be negative")
        if kind in DEFERRED_KINDS:
            clock = filled["clock"]
            if isinstance(clock, str) and clock not in _CLOCKS:
                raise ValueError(f"clock must be one of {_CLOCKS} or a clock, got {clock!r}")
            if not isinstance(clock, str) and not callable(getattr(clock, "monotonic", None)):
                raise ValueError("clock must be 'real', 'fake' or have a monotonic() method")
            filled["delay"] = float(filled["delay"])
        if kind == "preemption":
            if (
                route is not None
                and set([route] if isinstance(route, str) else route) - _PREEMPTION_ROUTES
            ):
                raise ValueError("preemption faults apply to CREATE_JOB and RECREATE_JOB")
            if float(filled["after"]) < 0:
                raise ValueError("after must not be negative")
            filled["after"] = float(filled["after"])
        if kind == "commit_then_stall" and float(filled["stall"]) < 0:
            raise ValueError("stall must not be negative")
        if kind == "commit_then_garble":
            status = filled["status"]
            if not isinstance(status, int) or not 200 <= status <= 299:
                raise ValueError("commit_then_garble answers a 2xx: status must be in 200..299")
        fault = Fault(self, kind, routes, float(probability), times, filled)  # type: ignore[arg-type]
        self.faults.append(fault)
        return fault

    def remove(self, fault: Fault) -> None:
        """Unregister a fault if registered.

        Args:
            fault: The fault.
        """
        if fault in self.faults:
            self.faults.remove(fault)

    def clear(self) -> None:
        """Unregister every fault."""
        self.faults.clear()

    def reseed(self, seed: int) -> None:
        """Restart the random draw.

        Args:
            seed: New seed.
        """
        self._rng = random.Random(seed)

    def draw(self, route: str | None) -> Fault | None:
        """Pick at most one fault for a request.

        When at least one registered fault matches the route, one uniform number ``u``
        in ``[0, 1)`` is drawn; matching faults are walked in registration order with a
        running sum of their probabilities, and the first fault whose running sum
        exceeds ``u`` fires. So probabilities of matching faults add up (a first fault
        with probability 1.0 shadows later ones), and when they sum to less than 1 the
        remainder is the chance that no fault fires. No number is drawn when no fault
        matches, so requests to other routes do not disturb the sequence.

        Args:
            route: The request's operation.

        Returns:
            The fault to apply, or None.
        """
        if not self.faults:
            return None
        candidates = [fault for fault in self.faults if fault.matches(route)]
        if not candidates:
            return None
        u = self._rng.random()
        total = 0.0
        for fault in candidates:
            total += fault.probability
            if u < total:
                fault.fired += 1
                if fault.times is not None and fault.fired >= fault.times:
                    self.remove(fault)
                return fault
        return None
