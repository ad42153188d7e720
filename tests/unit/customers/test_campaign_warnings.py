"""`pbx check-config`'s warning for campaigns that target nobody: the seed first, then the
database the configuration names (when it can be read)."""

from __future__ import annotations

from pathlib import Path

from pbx.cli_customers import campaign_warnings
from pbx.config import parse_config
from pbx.storage import Database
from tests.unit.storage.storage_contract import customer

CONFIG = """\
pbx: {{data_dir: "{data_dir}"}}
sip: {{domain: hotline.example}}
agents: [{{extension: "1001", name: A, password: pw-a-1001}}]
queues: [{{name: out, members: [{{agent: "1001"}}]}}]
trunks: [{{name: carrier, host: 127.0.0.1}}]
customers: [{{customer_no: "1", name: Seed, groups: [seeded]}}]
campaigns:
  - {{name: seeded, queue: out, caller_id: "+4930123456", target: {{groups: [seeded]}}}}
  - {{name: stored, queue: out, caller_id: "+4930123456", target: {{groups: [stored]}}}}
  - {{name: vips, queue: out, caller_id: "+4930123456", target: {{statuses: [vip]}}}}
"""


def test_the_seed_and_the_database_count(tmp_path: Path) -> None:
    config = parse_config(CONFIG.format(data_dir=tmp_path), "pbx.yaml")
    unread = campaign_warnings(config)
    assert [w.split(":")[0] for w in unread] == ["campaigns[1].target", "campaigns[2].target"]
    assert "the database was not read (no database file" in unread[0]
    with Database.open(f"sqlite:///{tmp_path / 'pbx.db'}") as db:
        db.customer_directory().upsert_customers([customer("9", groups=("stored",))])
    assert campaign_warnings(config) == [
        "campaigns[2].target: warning: campaign 'vips' targets nobody: no customer of the seed "
        "or the database matches it"]
