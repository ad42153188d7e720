"""The phases of a call and what each does with each kind of input — L2, pure.

A call (one caller, and whoever it is put through to) is always in one `Phase`. Everything it
learns is one of the `Input` kinds below. `OUTCOMES` says, for every phase and every kind,
what happens — no combination is left open, so nothing a phone, the media engine, the ACD, the
dialer or the desk sends is dropped silently:

- `ANSWER_OFFER`: a re-INVITE or UPDATE is answered from the leg's media session (hold, resume,
  codec change, session refresh), in every phase that has media; 488 when it can't be taken.
- `APPLY_ANSWER`: the SDP answer in an ACK after our offer (offer-less re-INVITE).
- `END_CALL`: the caller is gone (hung up, cancelled, media dead) or the desk hung up: the call
  leaves whatever it was in (a queued caller is abandoned, offers are cancelled, a connected
  agent gets a BYE and wrap-up) and the CDR is written.
- `REFUSE`: a REFER from anyone but the connected agent's phone: 403; an INVITE with
  Replaces for a call that is not connected: 481.
- `HANDLE`: the phase's own logic takes it (a digit for the IVR, an ACD order for the queue,
  the agent hanging up while connected …).
- `IGNORE`: meaningless in this phase; logged, nothing else (e.g. a digit while connected: the
  bridge relays RFC 4733 already; the end of a hold-music playback in the queue).

The call machine (`pbx.call.machine.receive`) classifies each input, looks the outcome up here
and carries it out; `tests/unit/call/test_phases.py` walks the whole table.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping


class Phase(enum.StrEnum):
    ROUTING = "routing"  # the dialled number is being routed; a campaign call is dialling
    IVR = "ivr"  # the caller is in an IVR flow, or hears a closing prompt
    QUEUED = "queued"  # waiting in an ACD queue (the ACD's offers to agents included)
    RINGING = "ringing"  # a directly dialled agent or outside number rings
    CONNECTED = "connected"  # caller and agent (or outside party) talk; held, consulting too
    ENDING = "ending"  # legs are being hung up and the CDR written


class Input(enum.StrEnum):
    OFFER = "offer"  # re-INVITE / UPDATE from a leg of the call (RemoteOffer)
    SDP_ANSWER = "sdp_answer"  # RemoteAnswer
    CALLER_HUNG_UP = "caller_hung_up"  # BYE / CANCEL on the caller's leg
    CALLER_MEDIA_LOST = "caller_media_lost"  # the caller's RTP timed out
    AGENT_HUNG_UP = "agent_hung_up"  # BYE on the connected agent's (or outside party's) leg
    AGENT_MEDIA_LOST = "agent_media_lost"  # the connected agent's RTP timed out
    LEG_PROGRESS = "leg_progress"  # ringing, answer, failure, hang-up of another leg
    REFER_BY_AGENT = "refer_by_agent"  # the connected agent's phone transfers (REFER)
    REFER_BY_OTHER = "refer_by_other"  # a REFER on any other leg (the carrier's side …)
    DTMF = "dtmf"  # a key from the caller (RFC 4733, INFO, in-band)
    PLAYBACK_END = "playback_end"  # a prompt, announcement or hold program ended
    CUSTOMER_FOUND = "customer_found"  # the answer to the IVR's customer look-up
    ACD_ORDER = "acd_order"  # the ACD's commands for this call
    DIALER_ORDER = "dialer_order"  # the pacer's decision about an answered campaign call
    DESK_HANGUP = "desk_hangup"  # the agent hung up from the desktop
    DESK_ORDER = "desk_order"  # hold, resume, transfer, consult … from the desktop
    REPLACES = "replaces"  # the agent's other phone takes the call over (INVITE w/ Replaces)


class Outcome(enum.StrEnum):
    ANSWER_OFFER = "answer_offer"
    APPLY_ANSWER = "apply_answer"
    END_CALL = "end_call"
    REFUSE = "refuse"
    HANDLE = "handle"
    IGNORE = "ignore"


# What every phase does alike; the rows below say where a phase differs.
_COMMON: Mapping[Input, Outcome] = {
    Input.OFFER: Outcome.ANSWER_OFFER,
    Input.SDP_ANSWER: Outcome.APPLY_ANSWER,
    Input.CALLER_HUNG_UP: Outcome.END_CALL,
    Input.CALLER_MEDIA_LOST: Outcome.END_CALL,
    Input.DESK_HANGUP: Outcome.END_CALL,
    Input.REFER_BY_AGENT: Outcome.REFUSE,
    Input.REFER_BY_OTHER: Outcome.REFUSE,
    Input.AGENT_HUNG_UP: Outcome.IGNORE,
    Input.AGENT_MEDIA_LOST: Outcome.IGNORE,
    Input.LEG_PROGRESS: Outcome.IGNORE,
    Input.DTMF: Outcome.IGNORE,
    Input.PLAYBACK_END: Outcome.IGNORE,
    Input.CUSTOMER_FOUND: Outcome.IGNORE,
    Input.ACD_ORDER: Outcome.IGNORE,
    Input.DIALER_ORDER: Outcome.IGNORE,
    Input.DESK_ORDER: Outcome.IGNORE,
    Input.REPLACES: Outcome.REFUSE,
}

_PHASES: Mapping[Phase, Mapping[Input, Outcome]] = {
    # a direct call rings its target; a campaign call dials, waits for the pacer
    Phase.ROUTING: {Input.LEG_PROGRESS: Outcome.HANDLE, Input.DIALER_ORDER: Outcome.HANDLE},
    Phase.IVR: {
        Input.DTMF: Outcome.HANDLE,
        Input.PLAYBACK_END: Outcome.HANDLE,
        Input.CUSTOMER_FOUND: Outcome.HANDLE,
    },
    Phase.QUEUED: {
        Input.ACD_ORDER: Outcome.HANDLE,  # hold program, offers, connect, announcements, overflow
        Input.LEG_PROGRESS: Outcome.HANDLE,  # the phones the ACD rings
        Input.DTMF: Outcome.HANDLE,  # the queue's exit key
        Input.DIALER_ORDER: Outcome.HANDLE,  # a campaign call dropped while waiting
        Input.DESK_ORDER: Outcome.HANDLE,  # a supervisor moves the caller (other orders: stray)
    },
    Phase.RINGING: {Input.LEG_PROGRESS: Outcome.HANDLE},
    Phase.CONNECTED: {
        Input.AGENT_HUNG_UP: Outcome.HANDLE,  # the call ends (or an attended transfer completes)
        Input.AGENT_MEDIA_LOST: Outcome.HANDLE,  # the agent's phone vanished: end, pause the agent
        Input.LEG_PROGRESS: Outcome.HANDLE,  # the consultation leg of an attended transfer
        Input.REFER_BY_AGENT: Outcome.HANDLE,  # the phone's own transfer key
        Input.DESK_ORDER: Outcome.HANDLE,
        Input.REPLACES: Outcome.HANDLE,  # the agent moves the call to their other phone
    },
    Phase.ENDING: {
        # The call is being torn down: nothing changes it any more.
        Input.OFFER: Outcome.IGNORE,
        Input.SDP_ANSWER: Outcome.IGNORE,
        Input.CALLER_HUNG_UP: Outcome.IGNORE,
        Input.CALLER_MEDIA_LOST: Outcome.IGNORE,
        Input.DESK_HANGUP: Outcome.IGNORE,
    },
}

OUTCOMES: Mapping[tuple[Phase, Input], Outcome] = {
    (phase, kind): _PHASES[phase].get(kind, _COMMON[kind]) for phase in Phase for kind in Input
}


def outcome(phase: Phase, kind: Input) -> Outcome:
    """What a call in `phase` does with an input of `kind` (see the module docstring)."""
    return OUTCOMES[(phase, kind)]
