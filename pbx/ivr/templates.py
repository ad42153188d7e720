"""``{variable}`` templates in prompt names and values (L2, pure).

A prompt reference such as ``"{lang}/greeting"`` or a value such as ``"{customer.status}"``
names call variables in braces; rendering replaces each with the variable's value (empty when
unset). ``{lang}`` is short for ``{language}``, the caller's language, which falls back to the
flow's language while no node has set it. There are no expressions: only names.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*)\}")
# A template is text with well-formed placeholders and no stray braces.
TEMPLATE = re.compile(r"^(?:[^{}]|\{[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*\})*$")
LANGUAGE_NAMES = frozenset({"lang", "language"})


def placeholders(template: str) -> list[str]:
    """The variable names `template` refers to, in order (``lang`` as written)."""
    return PLACEHOLDER.findall(template)


def render(template: str, variables: Mapping[str, str], default_language: str = "") -> str:
    """`template` with every ``{name}`` replaced by its variable (``""`` when unset)."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in LANGUAGE_NAMES:
            return variables.get("language") or default_language
        return variables.get(name, "")

    return PLACEHOLDER.sub(value, template)


def expand_languages(template: str, languages: Iterable[str]) -> list[str] | None:
    """The names `template` can render to, one per language, when ``{lang}`` is its only kind
    of placeholder; None when it names other variables (it cannot be checked at load)."""
    names = set(placeholders(template))
    if not names:
        return [template]
    if not names <= LANGUAGE_NAMES:
        return None
    return [render(template, {"language": language}) for language in languages]
