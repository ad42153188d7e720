"""check-config you can trust: paths relative to the file, every prompt the PBX can play,
impossible dates, holidays by country, and the warnings (valid, probably not meant)."""

from __future__ import annotations

import textwrap
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from pbx.config import ConfigError, apply_overrides, load_config
from pbx.config.loader import read_config, read_config_text
from pbx.ivr.conditions import is_holiday, is_open
from pbx.ivr.public_holidays import holiday_name, is_public_holiday
from pbx.ivr.schema import Schedule
from pbx.starter import PROMPTS

HEAD = """\
sip:
  domain: hotline.example
agents:
  - {extension: "1001", name: Anna, password: "anna-1001-Geheim", skills: {german: 5}}
"""


def write(directory: Path, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "pbx.yaml"
    path.write_text(HEAD + textwrap.dedent(text))
    return path


def problems(path: Path) -> dict[str, tuple[int | None, str]]:
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return {issue.path: (issue.line, issue.message) for issue in caught.value.issues}


def prompts_copy(directory: Path, *names: str) -> Path:
    """A prompts directory holding only `names` (copies of the shipped files)."""
    for name in names:
        target = directory / f"{name}.wav"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes((PROMPTS / f"{name}.wav").read_bytes())
    return directory


# --- paths ---------------------------------------------------------------------------------


def test_relative_paths_resolve_against_the_config_files_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    etc = tmp_path / "etc" / "pbx"
    etc.mkdir(parents=True)
    (etc / "sounds").symlink_to(PROMPTS, target_is_directory=True)
    path = write(etc, """\
        pbx: {data_dir: state}
        media: {prompts_dir: sounds}
        database: {url: "sqlite:///db/pbx.sqlite"}
        http:
          api_tokens: [{name: scrape, token_file: secrets/metrics.token}]
        """)
    elsewhere = tmp_path / "somewhere" / "else"
    elsewhere.mkdir(parents=True)
    monkeypatch.chdir(elsewhere)
    config = load_config(path)
    assert config.pbx.data_dir == str(etc / "state")
    assert config.media.prompts_path == str(etc / "sounds")
    assert config.database_url == f"sqlite:///{etc / 'db' / 'pbx.sqlite'}"
    assert config.http.api_tokens[0].token_file == str(etc / "secrets" / "metrics.token")
    # the same file named by a relative path from another directory: the same result
    monkeypatch.chdir(tmp_path / "etc")
    assert load_config("pbx/pbx.yaml") == config


def test_data_dir_placeholder_absolute_paths_and_postgres_stay(tmp_path: Path) -> None:
    path = write(tmp_path / "conf", """\
        pbx: {data_dir: /srv/pbx}
        database: {url: "sqlite:///{data_dir}/x.db"}
        """)
    assert load_config(path).database_url == "sqlite:////srv/pbx/x.db"
    path = write(tmp_path / "pg", 'database: {url: "postgresql://pbx@db/pbx"}\n')
    config = load_config(path)
    assert config.database_url == "postgresql://pbx@db/pbx"
    assert config.pbx.data_dir == str(tmp_path / "pg" / "var")
    assert config.media.prompts_path == str(PROMPTS)  # unset: the shipped prompts


def test_the_command_lines_data_dir_is_the_shells(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = apply_overrides(load_config(write(tmp_path / "conf", "")), data_dir="run")
    assert config.pbx.data_dir == str(tmp_path / "run")


def test_a_missing_prompts_directory_is_an_error_at_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "media:\n  prompts_dir: nowhere\n")
    found = problems(path)
    line, message = found["media.prompts_dir"]
    assert line == 6 and f"{tmp_path / 'nowhere'} does not exist" in message


# --- prompts beyond the flows ----------------------------------------------------------------

QUEUED = """\
    media: {prompts_dir: sounds}
    hold_programs:
      default:
        music: [music/hold_music]
        announcements: ["{lang}/please_hold"]
        ads: ["{lang}/ad_1", "{lang}/ad_9"]
    queues:
      - name: sales
        members: [{agent: "1001"}]
        announce: {position_every_s: 60, periodic_every_s: 90, periodic_prompts: ["{lang}/news"]}
      - name: support
        members: [{agent: "1001"}]
        announce: {hold_program: defualt}
    customer_statuses:
      vip: {hold_program: platinum}
    trunks: [{name: carrier, host: 127.0.0.1}]
    campaigns:
      - name: winback
        caller_id: "+4930123456"
        queue: sales
        target: {languages: [de, en]}
        drop_prompt: "{lang}/sorry"
    dids:
      - {number: "+4930123456", queue: sales, language: en}
    """


def test_hold_program_announcement_and_campaign_prompts_are_checked(tmp_path: Path) -> None:
    prompts_copy(tmp_path / "sounds", "music/hold_music", "de/please_hold", "en/please_hold",
                 "de/ad_1", "en/ad_1", "de/goodbye", "en/goodbye", "de/all_agents_busy",
                 "en/all_agents_busy", "de/you_are_caller", "de/in_the_queue",
                 *(f"de/numbers/{n}" for n in range(1, 31)))
    found = problems(write(tmp_path, QUEUED))
    assert found["hold_programs.default.ads[1]"] == (10, "missing prompts de/ad_9, en/ad_9; "
                                                         "did you mean 'de/ad_1'?")
    line, message = found["queues[0].announce.position_every_s"]
    assert (line, message) == (14, "missing prompts en/you_are_caller, en/numbers/1, "
                                   "en/numbers/2, en/numbers/3 … (32 in all); did you mean "
                                   "'de/you_are_caller'?")  # German has them all
    assert found["queues[0].announce.periodic_prompts"][1].startswith(
        "missing prompts de/news, en/news")
    assert found["queues[1].announce.hold_program"] == (
        17, "no hold program named 'defualt'; did you mean 'default'?")
    assert found["customer_statuses.vip.hold_program"] == (19, "no hold program named "
                                                               "'platinum'")
    assert found["campaigns[0].drop_prompt"] == (26, "missing prompts de/sorry, en/sorry")
    assert len(found) == 6, found


def test_the_built_in_hold_program_is_checked_too(tmp_path: Path) -> None:
    prompts_copy(tmp_path / "sounds", "de/goodbye", "de/all_agents_busy")
    found = problems(write(tmp_path, "media: {prompts_dir: sounds}\n"))
    assert found["hold_programs.default.music[0]"] == (
        1, "missing prompt music/hold_music (the built-in default hold "
        "program; set hold_programs to change it)")


def test_the_shipped_prompts_satisfy_the_shipped_example() -> None:
    root = Path(__file__).resolve().parents[3]
    loaded = read_config(root / "config" / "pbx.yaml")
    assert loaded.config.media.prompts_path == str(PROMPTS)
    assert loaded.warnings == ()


# --- dates and holidays ---------------------------------------------------------------------

FLOW = """\
    flows:
      main:
        start: check
        schedules:
          hours:
            hours: [{{days: mon-fri, start: "08:00", end: "18:00"}}]
            holidays: {holidays}
        nodes:
          check:
            type: branch
            cases: [{{when: {{open: hours}}, next: bye}}]
            default: bye
          bye: {{type: hangup}}
    """


@pytest.mark.parametrize(
    ("holidays", "path", "message"),
    [
        ("[2026-02-30]", "holidays[0]", "'2026-02-30' is not a date"),
        ("[12-24, 2026-13-01]", "holidays[1]", "'2026-13-01' is not a date"),
        ('["02-30"]', "holidays[0]", "'02-30' is not a date"),
        ("{country: XX}", "holidays.country", "'XX' is not a country the holidays package"),
        ("{country: DE, subdivision: XY}", "holidays.subdivision",
         "'XY' is not a subdivision of DE (one of BB, BE"),
        ("{subdivision: BY}", "holidays.country", "required when subdivision is given"),
        ("{country: DE, dates: [2026-02-30]}", "holidays.dates[0]",
         "'2026-02-30' is not a date"),
        ("{country: DE, date: [12-24]}", "holidays.date", "did you mean 'dates'?"),
    ],
)
def test_bad_dates_and_regions_are_errors_with_a_line(
        tmp_path: Path, holidays: str, path: str, message: str) -> None:
    found = problems(write(tmp_path, FLOW.format(holidays=holidays)))
    line, text = found[f"flows.main.schedules.hours.{path}"]
    assert line == 11 and message in text, found


def test_holidays_from_the_package_plus_the_companys_dates() -> None:
    bavaria = Schedule.model_validate({
        "hours": [{"start": "00:00", "end": "24:00"}],
        "holidays": {"country": "DE", "subdivision": "BY", "dates": ["12-24", "2026-06-12"]},
    })
    berlin = Schedule.model_validate({
        "hours": [{"start": "00:00", "end": "24:00"}],
        "holidays": {"country": "DE", "subdivision": "BE"},
    })
    epiphany = datetime(2026, 1, 6, 12, tzinfo=UTC)
    assert holiday_name("DE", "BY", epiphany.date()) == "Epiphany"
    assert is_holiday(bavaria, epiphany) and not is_holiday(berlin, epiphany)
    assert not is_open(bavaria, epiphany.timestamp(), UTC)
    assert is_open(berlin, epiphany.timestamp(), UTC)
    for day in (date(2027, 12, 24), date(2026, 6, 12), date(2031, 10, 3)):  # any year
        assert is_holiday(bavaria, datetime(day.year, day.month, day.day, 9, tzinfo=UTC))
    assert not is_holiday(bavaria, datetime(2026, 6, 11, 9, tzinfo=UTC))
    assert is_public_holiday("DE", None, date(2026, 10, 3))
    # the old form still works
    plain = Schedule.model_validate({"hours": [{"start": "08:00", "end": "18:00"}],
                                     "holidays": ["12-25", "2026-04-03"]})
    assert plain.holidays.dates == ("12-25", "2026-04-03") and plain.holidays.country is None


# --- warnings ------------------------------------------------------------------------------

WARNED = """\
    agents:
      - {extension: "1001", name: Anna, password: "anna-1001-Geheim", skills: {german: 5}}
      - {extension: "1002", name: Ben, password: "1002"}
      - {extension: "1003", name: Cem, password: "secret"}
      - {extension: "1004", name: Dana, password: "x7#Kq"}
    queues:
      - name: sales
        members: [{agent: "1001"}, {agent: "1002"}]
        skills: {german: 8, french: 1}
      - name: empty
    """


def test_warnings_are_printed_not_fatal(tmp_path: Path) -> None:
    text = "sip:\n  domain: hotline.example\n" + textwrap.dedent(WARNED)
    loaded = read_config_text(text, "w.yaml")
    found = {w.path: (w.line, w.message) for w in loaded.warnings}
    assert found["agents[1].password"] == (
        5, "warning: weak SIP password: it is the extension itself; scanners guess such "
           "passwords and place calls on your trunk")
    assert "SIP scanners try first" in found["agents[2].password"][1]
    assert "shorter than 8 characters" in found["agents[3].password"][1]
    assert "secret" not in str(loaded.warnings)  # never echoes a password
    assert found["queues[0].skills.german"][1] == (
        "warning: no member of queue 'sales' has skill 'german' at level 8 or above: its "
        "callers wait for nobody")
    assert "skill 'french'" in found["queues[0].skills.french"][1]
    assert found["queues[1].members"][1].startswith("warning: queue 'empty' has no members")
    assert "agents[0].password" not in found
    assert [str(w) for w in loaded.warnings][0].startswith("w.yaml:5: agents[1].password")
