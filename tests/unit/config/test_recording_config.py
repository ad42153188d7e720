"""The recording keys: per queue and campaign, the global section, and their errors with the
file's line."""

from __future__ import annotations

from pathlib import Path

import pytest

from pbx.config import ConfigError, parse_config

BASE = """\
sip: {domain: hotline.example}
media: {prompts_dir: %s}
agents:
  - {extension: "1001", name: Anna, password: pw-anna-1001}
"""


def prompts(tmp_path: Path) -> Path:
    # the consent prompt, the built-in default hold program's and the goodbye (checked at load)
    for name in ("de/notice", "en/notice", "de/ad_1", "de/ad_2", "de/ad_3", "de/please_hold",
                 "music/hold_music", "de/all_agents_busy", "de/goodbye"):
        path = tmp_path / "prompts" / f"{name}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"RIFF")
    return tmp_path / "prompts"


def test_defaults_and_values(tmp_path: Path) -> None:
    base = BASE % prompts(tmp_path)
    assert parse_config(base, "pbx.yaml").recording.retention_days == 90
    config = parse_config(base + """\
recording: {retention_days: 7, agents_may_listen: true}
queues:
  - name: support
    members: [{agent: "1001"}]
    recording: always
    recording_consent_prompt: "{lang}/notice"
  - {name: sales, members: [{agent: "1001"}]}
""", "pbx.yaml")
    assert config.recording.retention_days == 7 and config.recording.agents_may_listen
    support, sales = config.queues
    assert (support.recording, support.recording_consent_prompt) == ("always", "{lang}/notice")
    assert sales.recording == "never"


@pytest.mark.parametrize(("extra", "line", "message"), [
    ("queues:\n  - {name: q, recording: sometimes}\n", 6, "queues[0].recording"),
    ("queues:\n  - name: q\n    recording_consent_prompt: de/notice\n", 7,
     "no call of this queue is recorded"),
    ("queues:\n  - name: q\n    recording: on_demand\n    recording_consent_prompt: de/gone\n",
     8, "no prompt de/gone"),
    ("recording: {retention_days: -1}\n", 5, "recording.retention_days"),
    ("recording: {keep: forever}\n", 5, "recording.keep"),
])
def test_errors_name_the_line(tmp_path: Path, extra: str, line: int, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(BASE % prompts(tmp_path) + extra, "pbx.yaml")
    text = str(caught.value)
    assert message in text and f"pbx.yaml:{line}" in text, text
