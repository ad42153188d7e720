"""Campaign settings: parsing, defaults, errors with their paths, cross-section checks."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from pbx.dialer.schema import CampaignConfig, CustomerFilter, DncConfig, check_dialer_config
from tests.unit.dialer.dialer_harness import campaign_config, customer


def violations(settings: dict[str, Any]) -> list[tuple[tuple[Any, ...], str]]:
    with pytest.raises(ValidationError) as caught:
        campaign_config(**settings)
    out = []
    for error in caught.value.errors():
        ctx = error.get("ctx") or {}
        if "violations" in ctx:
            out += [(tuple(error["loc"]) + tuple(loc), msg) for loc, msg in ctx["violations"]]
        else:
            out.append((tuple(error["loc"]), error["msg"]))
    return out


def test_defaults() -> None:
    config = campaign_config()
    assert config.enabled and config.mode == "progressive"
    assert config.target.is_everyone
    assert config.max_abandon_rate == 0.03 and config.drop_after_s == 2.0
    assert config.calling_hours.windows[0].days == (0, 1, 2, 3, 4)
    assert config.calling_hours.default_timezone == "Europe/Berlin"
    assert config.retry.rule("busy").delay_s == 300
    assert not config.amd.enabled


def test_a_full_campaign() -> None:
    config = campaign_config(
        target={
            "groups": "berlin",
            "statuses": ["gold", "vip"],
            "languages": "de",
            "fields": [{"key": "contract", "in": ["L-17", 18]}, {"key": "region",
                                                                 "equals": "north"}],
        },
        calling_hours={"windows": [{"days": "mon-sat", "start": "09:00", "end": "19:30"}],
                       "default_timezone": "America/New_York"},
        retry={"machine": {"delay_s": 7200, "max_attempts": 2}},
        blending={"pause_above_s": 30, "resume_below_s": 10, "queues": ["support"]},
        mode="predictive",
        max_dial_level=2.5,
        amd={"enabled": True, "action": "leave_message", "message_prompt": "{lang}/callback"},
        strategy="longest_idle",
        form="renewal",
    )
    assert config.target.groups == ("berlin",)
    assert config.target.fields[0].values() == ("L-17", "18")
    assert config.target.fields[1].values() == ("north",)
    assert config.calling_hours.windows[0].days == (0, 1, 2, 3, 4, 5)
    assert config.retry.rule("machine").max_attempts == 2
    assert config.retry.rule("busy").delay_s == 300  # untouched defaults stay
    assert config.blending.resume_threshold_s == 10


@pytest.mark.parametrize("target", ["all", None, {}])
def test_target_all(target: Any) -> None:
    assert campaign_config(target=target).target.is_everyone


def test_filter_matches_in_python() -> None:
    flt = CustomerFilter.model_validate(
        {"groups": ["a", "b"], "statuses": ["gold"], "fields": [{"key": "x", "equals": "1"}]}
    )
    assert flt.matches(customer("1", groups=["b"], status="gold", x=1))
    assert not flt.matches(customer("2", groups=["c"], status="gold", x=1))
    assert not flt.matches(customer("3", groups=["a"], status="standard", x=1))
    assert not flt.matches(customer("4", groups=["a"], status="gold", x=2))
    assert not flt.matches(customer("5", groups=["a"], status="gold"))
    assert CustomerFilter().matches(customer("6"))


@pytest.mark.parametrize(
    ("settings", "loc", "text"),
    [
        ({"target": {"fields": [{"key": "x"}]}}, ("target", "fields", 0, "equals"),
         "exactly one"),
        ({"target": {"fields": [{"key": "x", "equals": "1", "in": ["2"]}]}},
         ("target", "fields", 0, "equals"), "exactly one"),
        ({"target": {"fields": [{"key": "a b", "equals": "1"}]}},
         ("target", "fields", 0, "key"), "field key"),
        ({"target": {"groupz": ["x"]}}, ("target", "groupz"), "Extra inputs"),
        ({"amd": {"enabled": True, "action": "leave_message"}}, ("amd", "message_prompt"),
         "required"),
        ({"blending": {"pause_above_s": 10, "resume_below_s": 20}},
         ("blending", "resume_below_s"), "above"),
        ({"calling_hours": {"default_timezone": "Mars/Base"}},
         ("calling_hours", "default_timezone"), "time zone"),
        ({"calling_hours": {"windows": []}}, ("calling_hours", "windows"), "at least 1"),
        ({"max_abandon_rate": 0.9}, ("max_abandon_rate",), "less than or equal"),
        ({"mode": "robot"}, ("mode",), "preview"),
        ({"caller_id": "0301234"}, ("caller_id",), "E.164"),
        ({"name": "a b"}, ("name",), "not a name"),
    ],
)
def test_errors_name_their_place(settings: dict[str, Any], loc: tuple[Any, ...],
                                 text: str) -> None:
    found = violations(settings)
    assert any(where[: len(loc)] == loc and text in msg for where, msg in found), found


def test_config_is_frozen() -> None:
    config = campaign_config()
    with pytest.raises(ValidationError):
        config.mode = "predictive"


def test_dnc_config() -> None:
    assert DncConfig.model_validate({"numbers": ["+4930111"]}).numbers == ("+4930111",)
    with pytest.raises(ValidationError):
        DncConfig.model_validate({"numbers": ["0301111"]})


def test_cross_section_checks() -> None:
    campaigns = [
        campaign_config(name="a", queue="outbound", form="renewal", trunk="carrier",
                        target={"groups": ["berlin", "hamburgg"]},
                        blending={"pause_above_s": 5, "queues": ["suport"]}),
        campaign_config(name="a", queue="outbnd", form="nope"),
    ]
    found = check_dialer_config(campaigns, ["outbound", "support"], ["berlin", "hamburg"],
                                ["renewal"], ["carrier"])
    assert (("campaigns", 1, "name"), "duplicate name 'a' (first at campaigns[0])") in found
    messages = dict(found)
    assert "did you mean 'outbound'" in messages[("campaigns", 1, "queue")]
    assert "did you mean 'hamburg'" in messages[("campaigns", 0, "target", "groups", 1)]
    assert "did you mean 'support'" in messages[("campaigns", 0, "blending", "queues", 0)]
    assert "no form named 'nope'" in messages[("campaigns", 1, "form")]
    assert ("campaigns", 0, "target", "groups", 0) not in messages
    assert len(found) == 5


def test_cross_section_checks_skip_unknown_lists() -> None:
    campaigns = [campaign_config(target={"groups": ["imported"]}, form="x")]
    assert check_dialer_config(campaigns, ["outbound"]) == []
    assert check_dialer_config(campaigns, ["outbound"], known_trunks=[]) == [
        (("campaigns", 0, "trunk"), "an outbound campaign needs a trunk")
    ]


def test_target_round_trips_through_model_dump() -> None:
    target = campaign_config(target={"fields": [{"key": "x", "in": ["1"]}]}).target
    assert CustomerFilter.model_validate(target.model_dump(by_alias=True)) == target
    assert isinstance(campaign_config(), CampaignConfig)
