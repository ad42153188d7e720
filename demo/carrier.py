"""The demo's carrier: SIPp places one call per process from 127.0.0.1 (the trunk's address)
to one of the example DIDs, with a caller ID and the keys a caller of that kind presses.

Each call gets its own scenario and RTP pcap (`tests.integration.rtp_pcap`: μ-law silence with
the key presses as RFC 4733 events at the scripted times, counted from the answer). After its
keys the caller stays on the line: when the PBX (the agent, or a "closed" announcement) hangs
up, the caller answers the BYE; when its patience runs out first, it hangs up itself.

Callers, by kind:

- ``known``: a customer from the config calls from a listed phone number; the IVR finds them
  by caller ID, they choose a concern (1 billing, 2 technical, 3 contract) and are queued;
- ``unknown``: a number not in the directory; concern 3, then a customer number, confirmed
  with 1 after the IVR read it back;
- ``menu``: a known customer on the number without a language: the language menu, then as
  ``known``.
"""

from __future__ import annotations

import random
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.integration.carrier_sipp import Pause, Press, carrier_scenario

GAP_MS = 350  # between the keys of one entry



@dataclass(frozen=True)
class PlannedCall:
    """One caller: who, which number, which keys at which time (ms after the answer)."""

    kind: str
    caller: str
    did: str
    presses: tuple[tuple[int, str], ...]
    customer: str = ""  # the name, when the caller is a known customer

    @property
    def keys(self) -> str:
        return "".join(key for _, key in self.presses)

    def describe(self) -> str:
        who = f"{self.customer} " if self.customer else ""
        return f"{who}{self.caller} -> {self.did} ({self.kind}, keys {self.keys or '-'})"


def _entry(at_ms: int, keys: str) -> list[tuple[int, str]]:
    return [(at_ms + i * GAP_MS, key) for i, key in enumerate(keys)]


class CallerMix:
    """Draws callers from the config: its customers, its DIDs (language or menu)."""

    def __init__(self, config: dict[str, Any], rng: random.Random) -> None:
        self.rng = rng
        dids = config.get("dids") or []
        self.by_language = {d.get("language"): d["number"] for d in dids if d.get("flow")}
        self.menu_did = self.by_language.get(None, "")
        self.customers = [c for c in config.get("customers") or [] if c.get("phones")]
        if not self.by_language or not self.customers:
            raise ValueError("the config needs DIDs with flows and customers with phones")

    def _did(self, language: str | None) -> str:
        return self.by_language.get(language) or next(iter(self.by_language.values()))

    def next_call(self) -> PlannedCall:
        rng = self.rng
        kind = rng.choices(["known", "unknown", "menu"], weights=[6, 2, 2])[0]
        if kind == "menu" and not self.menu_did:
            kind = "known"
        concern = rng.choice("1123")  # billing twice as often
        if kind == "unknown":
            customer = rng.choice(self.customers)
            caller = f"+49170{rng.randrange(10**7):07d}"
            presses = [*_entry(4000, "3"), *_entry(7500, customer["customer_no"]),
                       *_entry(12500, "1")]
            return PlannedCall(kind, caller, self._did(customer.get("language")),
                               tuple(presses))
        customer = rng.choice(self.customers)
        caller = rng.choice(customer["phones"])
        did = self.menu_did if kind == "menu" else self._did(customer.get("language"))
        return PlannedCall(kind, caller, did, tuple(_entry(4000, concern)), customer["name"])


def write_scenario(folder: Path, name: str, call: PlannedCall, patience_s: float) -> Path:
    """The SIPp scenario and pcap for one call; returns the scenario's path."""
    steps: list[Press | Pause] = []
    last = 0
    for at, key in call.presses:  # keys at their times from the answer
        if at > last:
            steps.append(Pause(at - last))
        steps.append(Press(key, gap_ms=0))
        last = at
    return carrier_scenario(folder / f"{name}.xml", steps, end="either",
                            bye_timeout_ms=int(patience_s * 1000),
                            display=call.customer or "Anrufer")


def start_call(sipp: str, folder: Path, name: str, call: PlannedCall, pbx_port: int,
               local_port: int, media_port: int, patience_s: float) -> subprocess.Popen[bytes]:
    """Start SIPp for one call in the background (its files go to `folder`)."""
    scenario = write_scenario(folder, name, call, patience_s)
    args = [
        sipp, f"127.0.0.1:{pbx_port}", "-sf", str(scenario), "-m", "1", "-l", "1",
        "-i", "127.0.0.1", "-p", str(local_port), "-mi", "127.0.0.1", "-mp", str(media_port),
        "-s", call.did, "-key", "caller", call.caller, "-nostdin", "-trace_err",
        "-timeout", f"{int(patience_s + 120)}s", "-recv_timeout", "20000",
    ]
    return subprocess.Popen(args, cwd=folder, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
