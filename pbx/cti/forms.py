"""Screen-pop forms: what an agent sees of a call, and what a save may change (L3, no I/O).

A form (`pbx.config.schema.FormConfig`, "mask") is chosen per call: the form named like the
call's queue, else like its IVR flow, else ``default`` (`select_form`). Each field takes its
value from its ``source``:

- ``customer.name`` / ``customer.status`` / ``customer.fields.contract`` …: the customer record
  the IVR found (``customer.phone_numbers``, ``groups``, ``pinned_agents`` joined by commas);
- ``call.caller`` / ``call.waited_s`` / ``call.queue`` …: computed from the call;
- any other name: the IVR variable of that name (``customer_no``, ``concern``);
- no source: a value the agent enters, kept with the call.

`build_pop` renders the form for one agent: each field with its value and the agent's
permission (`pbx.cti.permissions`); hidden fields are left out entirely, values included.

Outside a call an agent opens a form by name only when it is *assigned* to them
(`forms_open_to`): ``default``, a form named after a queue they are a member of (without a
``queues`` section: one of their groups, which are then the queues), after one of their groups,
or the ``form`` of a campaign whose queue they serve. Supervisors and admins open any form. A
form named after an IVR flow shows only in the pops of calls that came through that flow.

What else follows from the field rules: `hidden_sources` (the sources a principal may not see
in *some* form — left out of CDRs too) and `searchable_attributes` (a customer search matches
only the customer number, phone numbers and name the asking agent's form shows them).

`plan_save` checks a save *before anything is written* and returns the changes to apply, or
raises `FormRejected`: 400 for a malformed body or an unknown field, 403 for any field the agent
may not write (hidden or read-only; the message lists them all), 409 for a customer field when
the call has no customer record, 422 with one message per field for values that fail the
field's type or validation. The storage applies the changes and their audit rows in one
transaction (`pbx.storage.SqlFormStore.save`), so a save is all or nothing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date

from pbx.config.schema import FormConfig, FormFieldConfig, PbxConfig
from pbx.cti.permissions import Access, Principal, field_access
from pbx.repositories import Customer
from pbx.storage.cti import FieldChange

DEFAULT_FORM = "default"
MAX_VALUE_CHARS = 10_000


class FormRejected(Exception):
    """A save (or a request for a form) was refused; nothing was changed.

    `status` is the HTTP status, `message` says what is wrong, `fields` maps field names to
    what is wrong with each (for 403 and 422)."""

    def __init__(self, status: int, message: str, fields: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.fields = dict(fields or {})


@dataclass(frozen=True, slots=True)
class PopContext:
    """What a form can show about one call (or, outside a call, only `customer`)."""

    call_id: str = ""
    caller: str = ""
    did: str = ""
    queue: str = ""
    flow: str = ""
    agent: str = ""
    offered_at: float | None = None
    waited_s: float | None = None
    variables: Mapping[str, str] = field(default_factory=dict)
    customer: Customer | None = None
    values: Mapping[str, str] = field(default_factory=dict)  # fields kept with the call


def select_form(
    forms: Mapping[str, FormConfig], queue: str = "", flow: str = ""
) -> tuple[str, FormConfig] | None:
    """The form for a call in `queue` that came through `flow` (see the module docstring)."""
    for name in (queue, flow, DEFAULT_FORM):
        if name and name in forms:
            return name, forms[name]
    return None


def forms_open_to(config: PbxConfig, who: Principal, sees_all: bool) -> tuple[str, ...]:
    """The names of the configured forms `who` may open by name (see the module docstring)."""
    if sees_all:
        return tuple(sorted(config.forms))
    queues = {queue.name for queue in config.effective_queues()
              if any(member.agent == who.extension for member in queue.members)}
    assigned = {DEFAULT_FORM, *queues, *who.groups}
    assigned |= {c.form for c in config.campaigns if c.form and c.queue in queues}
    return tuple(sorted(name for name in config.forms if name in assigned))


def hidden_sources(forms: Mapping[str, FormConfig], who: Principal) -> frozenset[str]:
    """Every field source some form hides from `who`: data `who` must not be sent outside a
    form either (CDR variables and columns)."""
    return frozenset(
        form_field.source
        for form in forms.values()
        for form_field in form.fields
        if form_field.source is not None and field_access(form_field, who) is Access.HIDDEN
    )


# What a customer search compares, by the form source that shows it.
SEARCHABLE = {"customer_no": "customer.customer_no", "phone": "customer.phone_numbers",
              "name": "customer.name"}


def searchable_attributes(form: FormConfig | None, who: Principal) -> tuple[str, ...]:
    """Which of `SEARCHABLE` a search by `who` may match: those `form` shows `who`."""
    if form is None:
        return ()
    shown = {f.source for f in form.fields if field_access(f, who) is not Access.HIDDEN}
    return tuple(name for name, source in SEARCHABLE.items() if source in shown)


def field_value(form_field: FormFieldConfig, ctx: PopContext) -> str | None:
    """The current value of a field for this call; None when its source has none."""
    source = form_field.source
    if source is None:
        return ctx.values.get(form_field.name)
    if source.startswith("customer."):
        return _customer_value(ctx.customer, source.removeprefix("customer."))
    if source.startswith("call."):
        return _computed_value(ctx, source.removeprefix("call."))
    if ctx.call_id and form_field.name in ctx.values:
        return ctx.values[form_field.name]  # corrected by an agent during this call
    return ctx.variables.get(source)


def _customer_value(customer: Customer | None, attribute: str) -> str | None:
    if customer is None:
        return None
    if attribute.startswith("fields."):
        return customer.fields.get(attribute.removeprefix("fields."))
    value = getattr(customer, attribute)
    return ",".join(value) if isinstance(value, tuple) else str(value)


def _computed_value(ctx: PopContext, name: str) -> str | None:
    if name == "id":
        return ctx.call_id or None
    if name == "waited_s":
        return None if ctx.waited_s is None else f"{ctx.waited_s:.0f}"
    if name == "offered_at":
        return None if ctx.offered_at is None else f"{ctx.offered_at:.3f}"
    value: str = getattr(ctx, name)
    return value or None


def build_pop(
    form_name: str, form: FormConfig, ctx: PopContext, who: Principal
) -> dict[str, object]:
    """The form as `who` sees it for this call: JSON-ready, hidden fields left out."""
    fields: list[dict[str, object]] = []
    for form_field in form.fields:
        access = field_access(form_field, who)
        if access is Access.HIDDEN:
            continue
        rules = form_field.validation
        fields.append(
            {
                "name": form_field.name,
                "label": form_field.shown_label,
                "type": form_field.type,
                "options": list(form_field.options),
                "value": field_value(form_field, ctx),
                "access": access.label,
                "required": rules.required,
                "pattern": rules.pattern,
                "min_length": rules.min_length,
                "max_length": rules.max_length,
            }
        )
    return {"form": form_name, "title": form.title or form_name, "fields": fields}


def plan_save(
    form: FormConfig, ctx: PopContext, who: Principal, values: object
) -> list[FieldChange]:
    """Check a save of `values` (field name -> value) by `who`; the changes to apply, old
    values of call fields included. Raises `FormRejected` (see the module docstring)."""
    if not isinstance(values, dict) or not values:
        raise FormRejected(400, "'values' must be a non-empty object of field name -> value")
    unknown = [name for name in values if not isinstance(name, str) or form.field(name) is None]
    if unknown:
        raise FormRejected(400, f"no such field in this form: {', '.join(map(str, unknown))}")
    refused = {
        name: access.label
        for name in values
        if (access := field_access(_field(form, name), who)) is not Access.READ_WRITE
    }
    if refused:
        listed = ", ".join(f"{name} ({level})" for name, level in refused.items())
        raise FormRejected(403, f"you may not change: {listed}", refused)
    in_record = [n for n in values if (_field(form, n).source or "").startswith("customer.")]
    if ctx.customer is None and in_record:
        raise FormRejected(409, f"no customer record to store {', '.join(in_record)} in")
    if not ctx.call_id:
        call_only = [n for n in values if n not in in_record]
        if call_only:
            raise FormRejected(409, f"only a call can store {', '.join(call_only)}")
    problems: dict[str, str] = {}
    changes: list[FieldChange] = []
    for name, raw in values.items():
        form_field = _field(form, name)
        value, problem = normalise_value(form_field, raw)
        if problem:
            problems[name] = problem
            continue
        assert value is not None
        target = form_field.source or ""
        old = None if target.startswith("customer.") else field_value(form_field, ctx)
        changes.append(FieldChange(field=name, target=target, new_value=value, old_value=old))
    if problems:
        listed = "; ".join(f"{name}: {text}" for name, text in problems.items())
        raise FormRejected(422, f"invalid values: {listed}", problems)
    return changes


def _field(form: FormConfig, name: str) -> FormFieldConfig:
    found = form.field(name)
    assert found is not None
    return found


_NUMBER = re.compile(r"^-?[0-9]+(?:\.[0-9]+)?$")


def normalise_value(form_field: FormFieldConfig, raw: object) -> tuple[str | None, str]:
    """The stored text for `raw` (JSON value) and "" — or None and what is wrong with it."""
    kind = form_field.type
    if kind == "checkbox":
        if isinstance(raw, bool):
            return ("true" if raw else "false"), ""
        if raw in ("true", "false"):
            return str(raw), ""
        return None, "expected true or false"
    if kind == "number" and isinstance(raw, int | float) and not isinstance(raw, bool):
        raw = repr(raw) if isinstance(raw, float) else str(raw)
    if raw is None:
        raw = ""
    if not isinstance(raw, str):
        return None, f"expected text, got {type(raw).__name__}"
    text = raw.strip() if kind != "textarea" else raw
    if len(text) > MAX_VALUE_CHARS:
        return None, f"longer than {MAX_VALUE_CHARS} characters"
    rules = form_field.validation
    if not text:
        return (None, "required") if rules.required else ("", "")
    if kind == "number" and not _NUMBER.match(text):
        return None, f"{text!r} is not a number"
    if kind == "date":
        try:
            date.fromisoformat(text)
        except ValueError:
            return None, f"{text!r} is not a date (YYYY-MM-DD)"
    if kind == "select" and text not in form_field.options:
        return None, f"{text!r} is not one of {', '.join(form_field.options)}"
    if rules.min_length is not None and len(text) < rules.min_length:
        return None, f"shorter than {rules.min_length} characters"
    if rules.max_length is not None and len(text) > rules.max_length:
        return None, f"longer than {rules.max_length} characters"
    if rules.pattern is not None and not re.fullmatch(rules.pattern, text):
        return None, f"{text!r} does not match {rules.pattern}"
    return text, ""
