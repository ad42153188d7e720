"""What each node type does while the call is in it: one small *visit* class per type (L2).

A visit lives from the moment the session enters a node until it leaves it, and keeps the
node's own progress (retries, digits so far, read-back, hook rounds). It acts only through the
session's primitives (`play`, `await_digits`, `await_lookup`, `goto`, `emit`, `finish`,
`fail`), so every state change still goes through the session's table.
"""

from __future__ import annotations

import re
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pbx.call.events import Hangup, Transfer
from pbx.ivr.conditions import evaluate
from pbx.ivr.events import CustomerFound, EnqueueCall, IvrOutcome, LookupCustomer
from pbx.ivr.hooks import HookCall, HookResult
from pbx.ivr.schema import (
    BranchNode,
    CollectNode,
    HangupNode,
    HookNode,
    LookupNode,
    MenuNode,
    NodeBase,
    PlayNode,
    QueueNode,
    SetNode,
    TransferNode,
)
from pbx.repositories import Customer

if TYPE_CHECKING:
    from pbx.ivr.runner import IvrSession

N = TypeVar("N", bound=NodeBase)


class Visit(Generic[N]):
    """Base: a node that never reads keys and never waits for a timer or a look-up."""

    def __init__(self, session: IvrSession, name: str, node: N) -> None:
        self.session = session
        self.name = name
        self.node = node

    def enter(self, now: float) -> None:
        raise NotImplementedError

    def digit(self, digit: str, now: float) -> None:
        raise AssertionError(f"{type(self).__name__} does not read keys")

    def timeout(self, now: float) -> None:
        raise AssertionError(f"{type(self).__name__} has no timer")

    def customer_found(self, event: CustomerFound, now: float) -> None:
        raise AssertionError(f"{type(self).__name__} does not look customers up")


class PlayVisit(Visit[PlayNode]):
    def enter(self, now: float) -> None:
        if self.node.barge_in and self.session.buffer:
            self.leave(now)  # keys already typed would interrupt it at once
            return
        self.session.play(self.node.prompt, self.node.barge_in, self.leave, now)

    def leave(self, now: float) -> None:
        self.session.goto(self.node.next, now)


class MenuVisit(Visit[MenuNode]):
    def __init__(self, session: IvrSession, name: str, node: MenuNode) -> None:
        super().__init__(session, name, node)
        self.failures = 0

    def enter(self, now: float) -> None:
        if self.session.buffer:
            self.wait(now)  # type-ahead: the choice is already made, skip the prompt
        else:
            self.prompt(now, ())

    def prompt(self, now: float, before: tuple[str, ...]) -> None:
        self.session.play((*before, *self.node.prompt), self.node.barge_in, self.wait, now)

    def wait(self, now: float) -> None:
        self.session.await_digits(now, self.node.timeout_s)

    def digit(self, digit: str, now: float) -> None:
        target = self.node.options.get(digit)
        if target is None:
            self.session.stats.invalid_entries += 1
            self.retry(now, self.node.invalid_prompt)
            return
        if self.node.variable is not None:
            self.session.vars[self.node.variable] = digit
        self.session.goto(target, now)

    def timeout(self, now: float) -> None:
        self.retry(now, self.node.timeout_prompt)

    def retry(self, now: float, prompt: tuple[str, ...]) -> None:
        self.failures += 1
        self.session.buffer.clear()
        if self.failures > self.node.max_retries:
            self.session.fail(self.node.on_failure, now)
        else:
            self.prompt(now, prompt)


# A caller told "... followed by the hash key" who typed max_digits digits presses the
# terminator next; this long the entry waits for it, so the key is not taken as the answer to
# the read-back (or as the next node's first key). Typists take well under a second.
FULL_ENTRY_GRACE_S = 1.5


class CollectVisit(Visit[CollectNode]):
    def __init__(self, session: IvrSession, name: str, node: CollectNode) -> None:
        super().__init__(session, name, node)
        self.failures = 0
        self.entered = ""
        self.confirming = False
        self.full = False  # max_digits typed; waiting a moment for the terminator

    def enter(self, now: float) -> None:
        self.begin(now, ())

    def begin(self, now: float, before: tuple[str, ...]) -> None:
        self.entered = ""
        self.confirming = self.full = False
        if self.session.buffer and not before:
            self.wait_first(now)
        else:
            prompts = (*before, *self.node.prompt)
            self.session.play(prompts, self.node.barge_in, self.wait_first, now)

    def wait_first(self, now: float) -> None:
        self.session.await_digits(now, self.node.first_digit_timeout_s)

    def digit(self, digit: str, now: float) -> None:
        if self.full:
            # The entry is complete; a key other than the terminator is the next answer.
            if digit != self.node.terminator:
                self.session.buffer.append(digit)
            self.complete(now)
        elif self.confirming:
            self.confirm_digit(digit, now)
        elif digit == self.node.terminator:
            self.complete(now)
        elif digit.isdigit():
            self.entered += digit
            if len(self.entered) >= self.node.max_digits and self.node.terminator:
                self.full = True
                self.session.await_digits(
                    now, min(FULL_ENTRY_GRACE_S, self.node.inter_digit_timeout_s)
                )
            elif len(self.entered) >= self.node.max_digits:
                self.complete(now)
            else:
                self.session.await_digits(now, self.node.inter_digit_timeout_s)
        else:
            self.session.stats.invalid_entries += 1
            self.retry(now, self.node.invalid_prompt)

    def timeout(self, now: float) -> None:
        if self.confirming:
            self.retry(now, self.node.timeout_prompt, read_back=True)
        elif self.entered:
            self.complete(now)  # the caller stopped typing: the entry is what they typed
        else:
            self.retry(now, self.node.timeout_prompt)

    def complete(self, now: float) -> None:
        self.full = False
        pattern = self.node.pattern
        if len(self.entered) < self.node.min_digits or (
            pattern is not None and re.fullmatch(pattern, self.entered) is None
        ):
            self.session.stats.invalid_entries += 1
            self.retry(now, self.node.invalid_prompt)
        elif self.node.confirm is not None:
            self.read_back(now, ())
        else:
            self.accept(now)

    def read_back(self, now: float, before: tuple[str, ...]) -> None:
        confirm = self.node.confirm
        assert confirm is not None
        self.confirming = True
        digits = tuple(confirm.digit_prompt.replace("{digit}", d) for d in self.entered)
        prompts = (*before, *confirm.intro, *digits, *confirm.prompt)
        self.session.play(prompts, True, self.wait_confirm, now)

    def wait_confirm(self, now: float) -> None:
        assert self.node.confirm is not None
        self.session.await_digits(now, self.node.confirm.timeout_s)

    def confirm_digit(self, digit: str, now: float) -> None:
        confirm = self.node.confirm
        assert confirm is not None
        if digit == confirm.confirm_digit:
            self.accept(now)
        elif digit == confirm.reenter_digit:
            self.begin(now, ())
        else:
            self.session.stats.invalid_entries += 1
            self.retry(now, self.node.invalid_prompt, read_back=True)

    def retry(self, now: float, prompt: tuple[str, ...], read_back: bool = False) -> None:
        self.failures += 1
        self.session.buffer.clear()
        if self.failures > self.node.max_retries:
            self.session.fail(self.node.on_failure, now)
        elif read_back:
            self.read_back(now, prompt)
        else:
            self.begin(now, prompt)

    def accept(self, now: float) -> None:
        self.session.vars[self.node.variable] = self.entered
        self.session.goto(self.node.next, now)


def customer_variables(customer: Customer) -> dict[str, str]:
    """The call variables a found customer becomes."""
    out = {
        "customer.customer_no": customer.customer_no,
        "customer.name": customer.name,
        "customer.status": customer.status,
        "customer.language": customer.language,
        "customer.groups": ",".join(customer.groups),
        "customer.pinned_agents": ",".join(customer.pinned_agents),
    }
    out.update({f"customer.fields.{key}": value for key, value in customer.fields.items()})
    return out


class LookupVisit(Visit[LookupNode]):
    def __init__(self, session: IvrSession, name: str, node: LookupNode) -> None:
        super().__init__(session, name, node)
        self.request = ""

    def enter(self, now: float) -> None:
        value = self.session.vars.get(self.node.source_variable, "")
        if not value:
            self.done(None, now)
            return
        self.request = self.session.await_lookup(now, self.node.timeout_s)
        self.session.emit(LookupCustomer(self.session.call, self.request, self.node.by, value))

    def customer_found(self, event: CustomerFound, now: float) -> None:
        if event.request != self.request:
            return  # the answer to an earlier look-up that timed out
        if event.error:
            self.session.vars["customer.lookup_error"] = event.error
        self.done(event.customer, now)

    def timeout(self, now: float) -> None:
        self.session.vars["customer.lookup_error"] = "timeout"
        self.done(None, now)

    def done(self, customer: Customer | None, now: float) -> None:
        variables = self.session.vars
        for key in [key for key in variables if key.startswith("customer.")]:
            if key != "customer.lookup_error":
                del variables[key]
        if customer is None:
            self.session.goto(self.node.not_found, now)
            return
        variables.pop("customer.lookup_error", None)
        variables.update(customer_variables(customer))
        self.session.goto(self.node.found, now)


class SetVisit(Visit[SetNode]):
    def enter(self, now: float) -> None:
        for name, template in self.node.variables.items():
            self.session.vars[name] = self.session.render(template)
        self.session.goto(self.node.next, now)


class BranchVisit(Visit[BranchNode]):
    def enter(self, now: float) -> None:
        session = self.session
        for case in self.node.cases:
            if evaluate(case.when, session.vars, session.flow.schedules, now, session.tz):
                session.goto(case.next, now)
                return
        session.goto(self.node.default, now)


class QueueVisit(Visit[QueueNode]):
    def enter(self, now: float) -> None:
        self.session.play(self.node.prompt, False, self.enqueue, now)

    def enqueue(self, now: float) -> None:
        session = self.session
        queue = session.render(self.node.queue)
        priority = self.node.priority
        if isinstance(priority, str):
            try:
                priority = max(0, int(session.render(priority)))
            except ValueError:
                priority = 0
        skills = tuple(s for s in (session.render(skill) for skill in self.node.skills) if s)
        pinned = tuple(a for a in session.vars.get("customer.pinned_agents", "").split(",") if a)
        session.emit(EnqueueCall(session.call, queue, priority, skills, pinned, dict(session.vars)))
        session.finish(IvrOutcome("queued", queue, priority, skills), now)


class TransferVisit(Visit[TransferNode]):
    def enter(self, now: float) -> None:
        self.session.play(self.node.prompt, False, self.transfer, now)

    def transfer(self, now: float) -> None:
        target = self.node.target
        self.session.emit(Transfer(self.session.call, target))
        self.session.finish(IvrOutcome("transferred", target), now)


class HangupVisit(Visit[HangupNode]):
    def enter(self, now: float) -> None:
        self.session.play(self.node.prompt, False, self.hang_up, now)

    def hang_up(self, now: float) -> None:
        self.session.emit(Hangup(self.session.call, self.node.cause))
        self.session.finish(IvrOutcome("completed", cause=self.node.cause), now)


class HookVisit(Visit[HookNode]):
    def __init__(self, session: IvrSession, name: str, node: HookNode) -> None:
        super().__init__(session, name, node)
        self.round = 0
        self.collected = ""
        self.result = HookResult()

    def enter(self, now: float) -> None:
        self.call_hook(now, "", False)

    def call_hook(self, now: float, digits: str, timed_out: bool) -> None:
        session, node = self.session, self.node
        hook = session.hooks.get(node.function)
        if hook is None:
            self.error(now, f"hook {node.function} is not loaded")
            return
        if self.round >= node.max_rounds:
            self.error(now, f"hook {node.function} asked for more than {node.max_rounds} rounds")
            return
        request = HookCall(
            call=session.call,
            node=self.name,
            round=self.round,
            variables=MappingProxyType(dict(session.vars)),
            options=MappingProxyType(dict(node.options)),
            digits=digits,
            timed_out=timed_out,
            now=now,
        )
        self.round += 1
        try:
            result: Any = hook(request)
        except Exception as exc:  # the admin's code must not take the PBX down
            self.error(now, f"hook {node.function} raised {type(exc).__name__}: {exc}")
            return
        if not isinstance(result, HookResult):
            self.error(now, f"hook {node.function} returned {type(result).__name__}")
            return
        self.follow(result, now)

    def follow(self, result: HookResult, now: float) -> None:
        session, node = self.session, self.node
        session.vars.update({str(key): str(value) for key, value in result.variables.items()})
        self.result = result
        if result.next is not None:
            if result.next not in node.targets_:
                self.error(now, f"hook {node.function} chose {result.next!r}, not a target")
                return
            target = result.next
            session.play(result.play, False, lambda at: session.goto(target, at), now)
        elif result.collect > 0:
            self.collected = ""
            if session.buffer:
                self.wait(now)
            else:
                session.play(result.play, True, self.wait, now)
        else:
            self.error(now, f"hook {node.function} returned neither next nor collect")

    def wait(self, now: float) -> None:
        self.session.await_digits(now, self.result.timeout_s or self.node.timeout_s)

    def digit(self, digit: str, now: float) -> None:
        if digit == self.result.terminator:
            self.call_hook(now, self.collected, False)
            return
        self.collected += digit
        if len(self.collected) >= self.result.collect:
            self.call_hook(now, self.collected, False)
        else:
            self.wait(now)

    def timeout(self, now: float) -> None:
        self.call_hook(now, self.collected, True)

    def error(self, now: float, message: str) -> None:
        self.session.stats.hook_errors += 1
        self.session.vars["hook.error"] = message
        self.session.fail(self.node.on_error, now)


VISITS: dict[type[NodeBase], type[Visit[Any]]] = {
    PlayNode: PlayVisit,
    MenuNode: MenuVisit,
    CollectNode: CollectVisit,
    LookupNode: LookupVisit,
    SetNode: SetVisit,
    BranchNode: BranchVisit,
    QueueNode: QueueVisit,
    TransferNode: TransferVisit,
    HangupNode: HangupVisit,
    HookNode: HookVisit,
}
