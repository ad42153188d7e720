"""Admins' own interactive programs in a flow: the `hook` node's contract (L2).

A hook is a plain function ``(HookCall) -> HookResult``, named in the flow as
``module:function``. The IVR calls it when the call reaches the node, and again after each round
of digits it asked for, until it names the next node::

    def check_contract(call: HookCall) -> HookResult:
        if call.round == 0:
            return HookResult(play=("de/enter_contract_number",), collect=8)
        if call.digits.startswith("9"):
            return HookResult(next="vip", variables={"contract": call.digits})
        return HookResult(next="queue", variables={"contract": call.digits})

A hook must be quick and pure: it runs inside the IVR's event handling, so it must not block
(no network or database calls; do those in the PBX, or precompute them). What it may see is the
`HookCall`; what it may do is the `HookResult`. An exception in a hook sends the call to the
node's ``on_error`` and is reported in the variable ``hook.error``; it never ends the PBX.

The IVR never imports anything itself: the L3 side resolves the names with `load_hooks`, giving
it `importlib.import_module`, and hands the functions to each `IvrSession`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class HookCall:
    """What a hook sees. `variables` is a read-only view of the call variables; `digits` what
    the caller typed in answer to the previous round (without the terminator), `timed_out`
    whether the caller stopped typing; `round` counts calls of this visit from 0."""

    call: str
    node: str
    round: int
    variables: Mapping[str, str]
    options: Mapping[str, str]
    digits: str = ""
    timed_out: bool = False
    now: float = 0.0


@dataclass(frozen=True, slots=True)
class HookResult:
    """What a hook wants: set `variables`; play `play`; then either go to `next` (one of the
    node's targets) or, when `next` is None, read up to `collect` digits (ended by `terminator`
    or `timeout_s` of silence) and be called again. A result with neither is an error."""

    next: str | None = None
    variables: Mapping[str, str] = field(default_factory=dict)
    play: tuple[str, ...] = ()
    collect: int = 0
    terminator: str = "#"
    timeout_s: float | None = None  # None: the node's timeout_s


Hook = Callable[[HookCall], HookResult]


def load_hooks(
    specs: Collection[str], import_module: Callable[[str], object]
) -> tuple[dict[str, Hook], dict[str, str]]:
    """Resolve ``module:function`` names with `import_module` (``importlib.import_module``).

    Returns the functions found and, for each name that failed, why (for load-time errors).
    """
    found: dict[str, Hook] = {}
    failed: dict[str, str] = {}
    for spec in specs:
        module_name, _, function_name = spec.partition(":")
        try:
            module = import_module(module_name)
        except Exception as exc:  # an admin's module may raise anything while importing
            failed[spec] = f"cannot import {module_name}: {type(exc).__name__}: {exc}"
            continue
        function = getattr(module, function_name, None)
        if not callable(function):
            failed[spec] = f"{module_name} has no function {function_name!r}"
            continue
        found[spec] = function
    return found, failed
