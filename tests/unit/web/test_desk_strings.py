"""The desk's and the wallboard's string table (pbx/web/static/i18n.js): both languages
complete, every key the pages and their scripts use present, and every state, role, call
state, outcome and default disposition the server can send has its words.

The table between the STRINGS-BEGIN and STRINGS-END markers is JSON; this test parses it the way
a browser would read it (as data), so a key missing in one language or a typo in desk.js fails
here, before any browser runs.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from pbx.acd.model import AgentState
from pbx.config.schema import CtiConfig, DeskLanguage
from pbx.cti.api import DESK_LANGUAGES
from pbx.cti.supervise import MODES
from pbx.dialer.pacing import RunState

STATIC = Path(__file__).resolve().parents[3] / "pbx" / "web" / "static"
CALL_STATES = ("queued", "offered", "dialing", "connected", "held", "ended")  # DeskCall.state
CDR_OUTCOMES = ("answered", "no_answer", "busy", "failed", "abandoned")
DIRECTIONS = ("inbound", "outbound", "internal")
ROLES = ("agent", "supervisor", "admin")


def strings() -> dict[str, dict[str, str]]:
    source = (STATIC / "i18n.js").read_text(encoding="utf-8")
    match = re.search(r"/\* STRINGS-BEGIN \*/(.*?)/\* STRINGS-END \*/", source, re.S)
    assert match, "i18n.js has no STRINGS-BEGIN … STRINGS-END table"
    table: dict[str, dict[str, str]] = json.loads(match[1])
    return table


def test_both_languages_have_the_same_keys_and_no_empty_text() -> None:
    table = strings()
    assert sorted(table) == sorted(DESK_LANGUAGES) == sorted(DeskLanguage.__args__)
    german, english = set(table["de"]), set(table["en"])
    assert german - english == set(), "only in German"
    assert english - german == set(), "only in English"
    for language, words in table.items():
        empty = [key for key, text in words.items() if not text.strip()]
        assert empty == [], f"{language}: empty {empty}"
        # The same placeholders in both languages ({n}, {time} …).
        for key, text in words.items():
            other = table["en" if language == "de" else "de"][key]
            assert set(re.findall(r"\{(\w+)\}", text)) == set(re.findall(r"\{(\w+)\}", other)), key


def test_german_is_really_german() -> None:
    table = strings()
    same = [k for k in table["de"] if table["de"][k] == table["en"][k]]
    # Words that are the same in both languages, nothing else.
    assert set(same) <= {"action.pause", "call.seconds", "call.transfer_placeholder",
                         "history.agent", "session.role.supervisor"}, same
    assert table["de"]["supervise.barge"] == "Aufschalten"
    assert table["de"]["wallboard.chart_axis"] == "Anrufe / {seconds} s"
    assert table["de"]["action.ready"] == "Bereit"
    assert table["de"]["call.hangup"] == "Auflegen"


def used_keys(page: str, *scripts: str) -> set[str]:
    """The string keys `page` and its `scripts` name literally."""
    html = (STATIC / page).read_text(encoding="utf-8")
    used = set(re.findall(r'data-i18n(?:-[a-z-]+)?="([^"]+)"', html))
    for name in scripts:
        script = (STATIC / name).read_text(encoding="utf-8")
        used |= set(re.findall(r'"data-i18n":\s*"([^"]+)"', script))
        used |= set(re.findall(r'\bt\("([^"]+)"', script))
        used |= set(re.findall(r'\btOr\("([^"]+)"', script))
        # keys kept in tables: ["listen", "supervise.listen", "supervise.listen_title"]
        used |= set(re.findall(r'"((?:supervise|wallboard)\.[a-z_.]+)"', script))
    return used


def test_every_key_the_page_and_script_use_exists() -> None:
    table = strings()["de"]
    used = used_keys("desk.html", "desk.js")
    assert len(used) > 60, sorted(used)  # the patterns still find the page's keys
    missing = sorted(key for key in used if key not in table)
    assert missing == [], missing


def test_every_key_the_wallboard_uses_exists() -> None:
    table = strings()["de"]
    used = used_keys("wallboard.html", "wallboard.js", "wallboard-supervise.js")
    assert len(used) > 50, sorted(used)
    assert {"supervise.listen", "supervise.whisper", "supervise.barge", "wallboard.chart_axis",
            "agent.no_phone", "wallboard.not_supervisor"} <= used
    missing = sorted(key for key in used if key not in table)
    assert missing == [], missing


def test_the_wallboard_shows_no_word_outside_the_table() -> None:
    # Every heading, column and label of the page carries a key: an element with text of its
    # own and no data-i18n would stay English on the German page.
    html = (STATIC / "wallboard.html").read_text(encoding="utf-8")
    body = html.split("<body>", 1)[1]
    for tag, text in re.findall(r"<(h1|h2|th|button|span|title)\b([^>]*)>[^<]*[A-Za-z]", body):
        assert "data-i18n" in text, f"<{tag}{text}> has words but no data-i18n"
    for name in ("wallboard.js", "wallboard-supervise.js"):
        script = (STATIC / name).read_text(encoding="utf-8")
        # no English sentence in quotes or backticks (user-facing text goes through t())
        prose = re.findall(r'["`]([A-Z][a-z]+(?: [a-z]+){2,}[^"`]*)["`]', script)
        assert prose == [], (name, prose)


@pytest.mark.parametrize(
    ("prefix", "codes"),
    [
        ("state.", tuple(state.value for state in AgentState)),
        ("call.state.", CALL_STATES),
        ("outcome.", CDR_OUTCOMES),
        ("direction.", DIRECTIONS),
        ("session.role.", ROLES),
        ("connection.", ("live", "offline")),
        ("campaign.state.", tuple(state.value for state in RunState)),
        ("supervise.mode.", MODES),
        ("disposition.", CtiConfig().dispositions),
        ("reason.", ("auto_pause", "phone_lost")),
    ],
)
def test_every_code_the_server_sends_has_words(prefix: str, codes: tuple[str, ...]) -> None:
    for language, words in strings().items():
        missing = [code for code in codes if prefix + code not in words]
        assert missing == [], f"{language}: no {prefix}{missing}"


def test_default_pause_codes_are_labelled_in_both_languages() -> None:
    for code in CtiConfig().pause_codes:
        assert all(getattr(code.labels, language) for language in DESK_LANGUAGES), code
    assert CtiConfig().pause_codes[0].label_in("de") == "Pause"
    assert CtiConfig().pause_codes[0].label_in("en") == "Break"
