"""Checks of a valid configuration against its prompts, and the warnings `check-config` and
`pbx run` print (pure functions of the configuration: no file is read here).

`prompt_problems` finds every prompt the PBX can play that the prompts directory lacks —
besides the flows' nodes (`pbx.ivr.validation`): the hold programs' music, announcements and
ads, the queues' position / waiting-time / periodic announcements, the campaigns' drop and
answering-machine messages, and the PBX's own "all agents busy, goodbye" — each ``{lang}``
expanded for every language the installation speaks. These are errors: a caller would hear
silence where the admin expected a message.

`warnings` finds what is valid but probably not meant: weak SIP passwords, skills a queue
requires that none of its members has, queues without members.
Both return ``(key path, message)`` pairs for the loader to turn into file:line issues.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

from pbx.config.schema import Loc, PbxConfig
from pbx.ivr.schema import QueueNode, did_you_mean
from pbx.ivr.templates import expand_languages

# The position and waiting-time announcements speak numbers up to this many (pbx.call.queued).
MAX_SPOKEN_NUMBER = 30
MIN_PASSWORD_LENGTH = 8
SHOWN_NAMES = 4  # missing prompts named in one message
# Passwords a SIP scanner tries first (SIPVicious' and friends' lists start with these).
COMMON_PASSWORDS = frozenset({
    "0000", "1111", "1234", "12345", "123456", "1234567", "12345678", "123456789", "1234567890",
    "abc123", "admin", "changeme", "default", "guest", "letmein", "pass", "passw0rd",
    "password", "password1", "pbx", "qwerty", "qwertz", "secret", "sip", "test", "user",
    "voip", "welcome", "asterisk", "freepbx", "geheim", "passwort",
})


def spoken_languages(config: PbxConfig) -> tuple[str, ...]:
    """Every language ``{lang}`` can stand for outside a flow's own nodes: the flows'
    languages, the DIDs' and the campaigns' target languages; ``de`` (what the PBX speaks to
    a caller whose language nobody set) when a DID bypasses the flows without a language."""
    found: list[str] = []
    for flow in config.flows.values():
        found += flow.all_languages
    for route in config.dids:
        if route.language is not None:
            found.append(route.language)
        elif route.flow is None:
            found.append("de")
    for campaign in config.campaigns:
        found += campaign.target.languages or ("de",)
    return tuple(sorted(set(found))) or ("de",)


def _missing(template: str, languages: Iterable[str], available: Collection[str]) -> list[str]:
    names = expand_languages(template, languages) or []
    return [name for name in dict.fromkeys(names) if name not in available]


def _report(loc: Loc, names: list[str], available: Collection[str], why: str = "") -> \
        list[tuple[Loc, str]]:
    if not names:
        return []
    plural = "s" if len(names) > 1 else ""
    hint = did_you_mean(names[0], set(available))
    shown = ", ".join(names[:SHOWN_NAMES])
    if len(names) > SHOWN_NAMES:
        shown += f" … ({len(names)} in all)"
    return [(loc, f"missing prompt{plural} {shown}{why}{hint}")]


def prompt_problems(config: PbxConfig, available: Collection[str]) -> list[tuple[Loc, str]]:
    """Prompts the PBX can play outside the flows' nodes that are not in `available` (names
    like ``de/greeting``, from `pbx.config.loader.available_prompts`)."""
    languages = spoken_languages(config)
    out: list[tuple[Loc, str]] = []
    built_in = "hold_programs" not in config.model_fields_set
    why = " (the built-in default hold program; set hold_programs to change it)" \
        if built_in else ""
    for name, program in config.hold_programs.items():
        for key in ("music", "announcements", "ads"):
            for index, template in enumerate(getattr(program, key)):
                out += _report(("hold_programs", name, key, index),
                               _missing(template, languages, available), available, why)
    numbers = [f"{{lang}}/numbers/{n}" for n in range(1, MAX_SPOKEN_NUMBER + 1)]
    for index, queue in enumerate(config.effective_queues()):
        announce, loc = queue.announce, ("queues", index, "announce")
        needed: list[tuple[str, list[str]]] = []
        if announce.position_every_s is not None:
            needed.append(("position_every_s",
                           ["{lang}/you_are_caller", *numbers, "{lang}/in_the_queue"]))
        if announce.ewt:
            needed.append(("ewt", ["{lang}/estimated_wait", "{lang}/less_than_one_minute",
                                   *numbers, "{lang}/minute", "{lang}/minutes"]))
        if announce.periodic_every_s is not None:
            needed.append(("periodic_prompts" if announce.periodic_prompts else
                           "periodic_every_s",
                           list(announce.periodic_prompts) or ["{lang}/thank_you_for_waiting"]))
        for key, templates in needed:
            names = [n for t in templates for n in _missing(t, languages, available)]
            out += _report((*loc, key), list(dict.fromkeys(names)), available)
    for index, campaign in enumerate(config.campaigns):
        prompts: tuple[tuple[Loc, str | None], ...] = (
            (("drop_prompt",), campaign.drop_prompt),
            (("amd", "message_prompt"), campaign.amd.message_prompt),
        )
        for where, template in prompts:
            if template is not None:
                out += _report(("campaigns", index, *where),
                               _missing(template, languages, available), available)
    if config.flows or config.dids or config.queues or config.campaigns:
        goodbye = [n for t in ("{lang}/all_agents_busy", "{lang}/goodbye")
                   for n in _missing(t, languages, available)]
        out += _report(("media", "prompts_dir"), goodbye, available,
                       " (said when no agent can take a call)")
    return out


def hold_program_problems(config: PbxConfig) -> list[tuple[Loc, str]]:
    """Queues and customer statuses naming a hold program that is not configured (the call
    would silently get the default one)."""
    known = set(config.hold_programs)
    out: list[tuple[Loc, str]] = []
    for index, queue in enumerate(config.queues):
        name = queue.announce.hold_program
        if name not in known and (name != "default" or "hold_program" in
                                  queue.announce.model_fields_set):
            out.append((("queues", index, "announce", "hold_program"),
                        f"no hold program named {name!r}{did_you_mean(name, known)}"))
    for status, rule in config.customer_statuses.items():
        if rule.hold_program is not None and rule.hold_program not in known:
            out.append((("customer_statuses", status, "hold_program"),
                        f"no hold program named {rule.hold_program!r}"
                        f"{did_you_mean(rule.hold_program, known)}"))
    return out


def _weak_password(extension: str, password: str) -> str | None:
    lowered = password.lower()
    if lowered in COMMON_PASSWORDS:
        return "is one of the passwords SIP scanners try first"
    if extension in (password, password[::-1]) or password == extension * 2:
        return "is the extension itself"
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"is shorter than {MIN_PASSWORD_LENGTH} characters"
    if len(set(password)) <= 2:
        return "repeats one or two characters"
    return None


def warnings(config: PbxConfig) -> list[tuple[Loc, str]]:
    """What is valid but probably not meant (printed, never fatal)."""
    out: list[tuple[Loc, str]] = []
    for index, agent in enumerate(config.agents):
        why = _weak_password(agent.extension, agent.password)
        if why is not None:
            out.append((("agents", index, "password"),
                        f"weak SIP password: it {why}; scanners guess such passwords and place "
                        f"calls on your trunk"))
    agents = {agent.extension: agent for agent in config.agents if agent.enabled}
    for index, queue in enumerate(config.queues):
        members = [agents[m.agent] for m in queue.members if m.agent in agents]
        if not queue.members:
            out.append((("queues", index, "members"),
                        f"queue {queue.name!r} has no members: its callers wait for nobody"))
        elif not members:
            out.append((("queues", index, "members"),
                        f"queue {queue.name!r} has no enabled member"))
        for skill, level in queue.skills.items():
            if members and not any(a.skills.get(skill, 0) >= level for a in members):
                out.append((("queues", index, "skills", skill),
                            f"no member of queue {queue.name!r} has skill {skill!r} at level "
                            f"{level} or above: its callers wait for nobody"))
    skilled = {skill for agent in agents.values() for skill in agent.skills}
    for flow_name, flow in config.flows.items():
        for node_name, node in flow.nodes.items():
            if not isinstance(node, QueueNode):
                continue
            for index, skill in enumerate(node.skills):
                if "{" not in skill and skill not in skilled:
                    out.append((("flows", flow_name, "nodes", node_name, "skills", index),
                                f"no agent has skill {skill!r}: callers sent here wait for "
                                f"nobody{did_you_mean(skill, skilled)}"))
    return out
