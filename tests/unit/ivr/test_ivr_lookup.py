"""The lookup node: by caller ID or a collected number, through LookupCustomer/CustomerFound."""

from __future__ import annotations

from pbx.call.events import DtmfReceived, Hangup, Play
from pbx.ivr.events import CustomerFound, EnqueueCall, IvrOutcome, LookupCustomer
from pbx.ivr.runner import IvrState
from pbx.repositories import Customer
from tests.unit.ivr.ivr_driver import Caller, InMemoryDirectory

VIP = Customer(
    customer_no="100004",
    name="Dr. Hans Weber",
    phone_numbers=("+4940123987",),
    status="vip",
    language="de",
    groups=("key-accounts",),
    pinned_agents=("1002", "1001"),
    fields={"tariff": "Premium"},
)
PLAIN = Customer(customer_no="100001", name="Erika Mustermann", phone_numbers=("+4915112345678",))
DIRECTORY = InMemoryDirectory([VIP, PLAIN])

BY_PHONE = """
start: identify
nodes:
  identify: {type: lookup, found: route, not_found: ask, timeout_s: 2}
  ask:
    type: collect
    prompt: de/enter_customer_number
    variable: customer_no
    min_digits: 6
    max_digits: 6
    next: by_number
  by_number: {type: lookup, by: customer_no, found: route, not_found: unknown}
  unknown: {type: play, prompt: de/customer_not_found, next: route}
  route:
    type: branch
    cases: [{when: {var: customer.status, in: [vip, gold]}, next: vip}]
    default: normal
  vip: {type: queue, queue: support, priority: 10, skills: ["{concern}", german]}
  normal: {type: queue, queue: support, skills: ["{concern}"]}
"""


def test_found_by_caller_id_becomes_variables_and_queues_with_priority() -> None:
    caller = Caller(BY_PHONE, {"caller": "+4940123987", "concern": "billing"}, directory=DIRECTORY)
    out = caller.start()
    assert out == [LookupCustomer("c1", "c1/lookup/1", "phone", "+4940123987")]
    assert caller.session.state is IvrState.LOOKING_UP
    assert caller.session.next_deadline() == caller.now + 2
    (enqueue,) = caller.answer_lookup()
    variables = caller.session.variables
    assert variables["customer.customer_no"] == "100004"
    assert variables["customer.name"] == "Dr. Hans Weber"
    assert variables["customer.status"] == "vip"
    assert variables["customer.pinned_agents"] == "1002,1001"
    assert variables["customer.groups"] == "key-accounts"
    assert variables["customer.fields.tariff"] == "Premium"
    assert enqueue == EnqueueCall(
        "c1", "support", 10, ("billing", "german"), ("1002", "1001"), variables
    )
    assert caller.session.outcome == IvrOutcome("queued", "support", 10, ("billing", "german"))
    assert caller.session.path == ("identify", "route", "vip")


def test_not_found_by_phone_then_found_by_customer_number() -> None:
    caller = Caller(BY_PHONE, {"caller": "+4930000"}, directory=DIRECTORY)
    caller.start()
    caller.answer_lookup()
    caller.play_out()
    out = caller.press("100001#")
    assert out == [LookupCustomer("c1", "c1/lookup/3", "customer_no", "100001")]
    (enqueue,) = caller.answer_lookup()
    assert isinstance(enqueue, EnqueueCall) and enqueue.priority == 0
    assert enqueue.pinned_agents == ()
    assert caller.session.variables["customer.name"] == "Erika Mustermann"
    assert caller.session.path == ("identify", "ask", "by_number", "route", "normal")


def test_unknown_customer_number_takes_not_found() -> None:
    caller = Caller(BY_PHONE, {"caller": "+4930000"}, directory=DIRECTORY)
    caller.start()
    caller.answer_lookup()
    caller.press("999999#")
    (play,) = caller.answer_lookup()
    assert isinstance(play, Play) and play.prompts == ("de/customer_not_found",)
    assert "customer.customer_no" not in caller.session.variables


def test_no_caller_id_skips_the_directory() -> None:
    caller = Caller(BY_PHONE, {"caller": ""}, directory=DIRECTORY)
    (play,) = caller.start()
    assert isinstance(play, Play) and play.prompts == ("de/enter_customer_number",)
    assert caller.session.stats.lookups == 0


def test_lookup_timeout_takes_not_found_and_a_late_answer_is_ignored() -> None:
    caller = Caller(BY_PHONE, {"caller": "+4940123987"}, directory=DIRECTORY)
    caller.start()
    request = caller.pending_lookup
    assert request is not None
    (play,) = caller.wait(2)
    assert isinstance(play, Play) and play.prompts == ("de/enter_customer_number",)
    assert caller.session.variables["customer.lookup_error"] == "timeout"
    late = CustomerFound("c1", request.request, VIP)
    assert caller.session.handle(late, caller.now) == []
    assert "customer.status" not in caller.session.variables


def test_directory_error_takes_not_found() -> None:
    caller = Caller(BY_PHONE, {"caller": "+4940123987"}, directory=DIRECTORY)
    caller.start()
    caller.answer_lookup(error="database is locked")
    assert caller.session.path == ("identify", "ask")
    assert caller.session.variables["customer.lookup_error"] == "database is locked"


def test_keys_during_the_lookup_are_typed_ahead() -> None:
    caller = Caller(BY_PHONE, {"caller": "+4930000"}, directory=DIRECTORY)
    caller.start()
    for key in "100001#":
        assert caller.session.handle(DtmfReceived("c1", key), caller.now) == []
    out = caller.answer_lookup()  # not found: the collect takes the typed number at once
    assert out == [LookupCustomer("c1", "c1/lookup/2", "customer_no", "100001")]


def test_caller_hangs_up_during_the_lookup() -> None:
    caller = Caller(BY_PHONE, {"caller": "+4940123987"}, directory=DIRECTORY)
    caller.start()
    assert caller.hang_up() == []
    assert caller.session.outcome == IvrOutcome("hung_up", cause="normal")
    assert caller.answer_lookup() == []  # the answer arrives after the caller left


def test_a_second_lookup_replaces_the_first_customer() -> None:
    flow = """
start: first
nodes:
  first: {type: lookup, found: second, not_found: second}
  second: {type: lookup, by: customer_no, variable: other, found: done, not_found: done}
  done: {type: hangup}
"""
    caller = Caller(flow, {"caller": "+4940123987", "other": "404"}, directory=DIRECTORY)
    caller.start()
    caller.answer_lookup()
    assert caller.session.variables["customer.status"] == "vip"
    assert caller.answer_lookup() == [Hangup("c1", "normal")]
    assert not any(key.startswith("customer.") for key in caller.session.variables)
