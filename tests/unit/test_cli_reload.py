"""`pbx reload`'s output: what changed for a person, the refusal's errors one per line."""

from __future__ import annotations

import json

from pbx.cli_reload import _refusal, render


def test_render_lists_changes_and_what_needs_a_restart() -> None:
    text = render({"applied": True, "file": "/etc/pbx/pbx.yaml",
                   "changes": {"queues": {"changed": ["support"]},
                               "agents": {"added": ["1011"], "removed": ["1002"]}},
                   "needs_restart": ["http.port"]})
    assert text.splitlines() == [
        "reloaded /etc/pbx/pbx.yaml",
        "agents: added 1011; removed 1002",
        "queues: changed support",
        "needs a restart (not applied): http.port",
    ]
    assert render({"applied": True, "changes": {}, "needs_restart": []}).endswith(
        "nothing changed")


def test_only_a_422_with_errors_is_a_refused_file() -> None:
    body = {"applied": False, "errors": ["pbx.yaml:3: queues[0].strategy: no"]}
    assert _refusal("422 " + json.dumps(body)) == body
    assert _refusal('403 {"error": "no", "status": 403}') is None
    assert _refusal("422 not json") is None
