"""Checks of IVR flows, DID routes and customers against the rest of the installation (L2).

`FlowConfig` checks its own structure when it is built. What it cannot know is checked here,
given what the caller (the config loader, L3) found: which prompt files exist, which queues and
agents are configured, which hook functions could be imported. Each function returns
violations as ``(key path from the configuration root, message)``, for the loader to turn into
issues with file and line; an empty list means all is well. Pass None for a collection that is
not known yet (for example queues before the ACD exists) to skip its checks.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence

from pbx.ivr.schema import (
    CustomerSeed,
    DidRoute,
    FlowConfig,
    HookNode,
    Loc,
    QueueNode,
    SetNode,
    TransferNode,
    Violation,
    did_you_mean,
)
from pbx.ivr.templates import expand_languages, placeholders


def validate_flows(
    flows: Mapping[str, FlowConfig],
    available_prompts: Collection[str] | None,
    known_queues: Collection[str] | None,
    known_agents: Collection[str] | None,
    hook_errors: Mapping[str, str] | None = None,
    *,
    root: Loc = ("flows",),
) -> list[Violation]:
    """Missing prompts (``{lang}`` expanded for each of the flow's languages), unknown queues,
    agents to transfer to, and hooks that could not be loaded (`hook_errors`, from
    `pbx.ivr.hooks.load_hooks`: ``module:function`` -> why)."""
    out: list[Violation] = []
    for flow_name, flow in flows.items():
        for node_name, node in flow.nodes.items():
            here: Loc = (*root, flow_name, "nodes", node_name)
            if available_prompts is not None:
                out += _missing_prompts(flow, node.prompt_refs(), available_prompts, here)
            if known_queues is not None and isinstance(node, QueueNode):
                out += _unknown_queues(flow, node, known_queues, here, (*root, flow_name))
            if known_agents is not None and isinstance(node, TransferNode) and node.agent:
                if node.agent not in known_agents:
                    out.append(((*here, "agent"), f"unknown agent {node.agent!r}"))
            if hook_errors and isinstance(node, HookNode) and node.function in hook_errors:
                out.append(((*here, "function"), hook_errors[node.function]))
    return list(dict.fromkeys(out))  # two queue nodes may report the same set node


def _unknown_queues(
    flow: FlowConfig, node: QueueNode, known: Collection[str], here: Loc, flow_loc: Loc
) -> list[Violation]:
    # A literal name is checked where it is written; a name that is just "{variable}" is
    # checked at every set node that gives the variable a literal value.
    names = placeholders(node.queue)
    if not names:
        candidates = [((*here, "queue"), node.queue)]
    elif [f"{{{names[0]}}}"] == [node.queue]:
        candidates = [
            ((*flow_loc, "nodes", name, "variables", names[0]), other.variables[names[0]])
            for name, other in flow.nodes.items()
            if isinstance(other, SetNode) and names[0] in other.variables
        ]
    else:
        return []
    return [
        (loc, f"unknown queue {value!r}{did_you_mean(value, set(known))}")
        for loc, value in candidates
        if not placeholders(value) and value not in known
    ]


def _missing_prompts(
    flow: FlowConfig,
    refs: Iterator[tuple[Loc, str]],
    available: Collection[str],
    here: Loc,
) -> list[Violation]:
    # One message per key path: a read-back's digit prompts share one.
    missing: dict[Loc, list[str]] = {}
    for loc, template in refs:
        names = expand_languages(template, flow.all_languages) or []
        missing.setdefault(loc, []).extend(name for name in names if name not in available)
    out: list[Violation] = []
    for loc, names in missing.items():
        if names:
            hint = did_you_mean(names[0], set(available))
            shown = ", ".join(dict.fromkeys(names))
            out.append(
                ((*here, *loc), f"missing prompt{'s' if len(names) > 1 else ''} {shown}{hint}")
            )
    return out


def validate_dids(
    dids: Sequence[DidRoute],
    flows: Mapping[str, FlowConfig],
    known_queues: Collection[str] | None,
    known_agents: Collection[str] | None,
    *,
    root: Loc = ("dids",),
) -> list[Violation]:
    """Repeated numbers, unknown flows, queues and agents, languages a flow does not speak."""
    out: list[Violation] = []
    first: dict[str, int] = {}
    for index, route in enumerate(dids):
        here: Loc = (*root, index)
        if route.number in first:
            out.append(
                ((*here, "number"), f"{route.number} is already {root[-1]}[{first[route.number]}]")
            )
        first.setdefault(route.number, index)
        if route.flow is not None:
            flow = flows.get(route.flow)
            if flow is None:
                hint = did_you_mean(route.flow, set(flows))
                out.append(((*here, "flow"), f"unknown flow {route.flow!r}{hint}"))
            elif route.language is not None and route.language not in flow.all_languages:
                out.append(
                    (
                        (*here, "language"),
                        f"flow {route.flow!r} does not speak {route.language!r}"
                        f" ({', '.join(flow.all_languages)})",
                    )
                )
        if route.queue is not None and known_queues is not None:
            if route.queue not in known_queues:
                hint = did_you_mean(route.queue, set(known_queues))
                out.append(((*here, "queue"), f"unknown queue {route.queue!r}{hint}"))
        if route.agent is not None and known_agents is not None:
            if route.agent not in known_agents:
                out.append(((*here, "agent"), f"unknown agent {route.agent!r}"))
    return out


def validate_customers(
    customers: Sequence[CustomerSeed],
    known_agents: Collection[str] | None,
    *,
    root: Loc = ("customers",),
) -> list[Violation]:
    """Repeated customer numbers, a phone number given to two customers, unknown pinned agents."""
    out: list[Violation] = []
    first: dict[str, int] = {}
    phone_owner: dict[str, int] = {}
    for index, seed in enumerate(customers):
        here: Loc = (*root, index)
        if seed.customer_no in first:
            message = f"duplicate customer_no {seed.customer_no!r} (first at {root[-1]}"
            out.append(((*here, "customer_no"), f"{message}[{first[seed.customer_no]}])"))
        first.setdefault(seed.customer_no, index)
        listed: set[str] = set()
        for position, number in enumerate(seed.phones):
            owner = phone_owner.setdefault(number, index)
            if number in listed:
                out.append(((*here, "phones", position), f"{number} is listed twice"))
            elif owner != index:
                message = f"{number} is also a phone of {root[-1]}[{owner}]"
                out.append(((*here, "phones", position), message))
            listed.add(number)
        if known_agents is not None:
            for position, extension in enumerate(seed.pinned_agents):
                if extension not in known_agents:
                    out.append(((*here, "pinned_agents", position), f"unknown agent {extension!r}"))
    return out


def hook_specs(flows: Mapping[str, FlowConfig]) -> dict[str, list[Loc]]:
    """Every ``module:function`` the flows' hook nodes name, with where (to import at load)."""
    out: dict[str, list[Loc]] = {}
    for flow_name, flow in flows.items():
        for node_name, node in flow.nodes.items():
            if isinstance(node, HookNode):
                loc: Loc = ("flows", flow_name, "nodes", node_name, "function")
                out.setdefault(node.function, []).append(loc)
    return out
