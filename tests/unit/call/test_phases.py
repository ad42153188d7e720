"""The table of what each phase of a call does with each kind of input (pbx.call.phases): every
combination is defined, and the rows say what a caller, an agent or the carrier would expect."""

from __future__ import annotations

import pytest

from pbx.call.phases import OUTCOMES, Input, Outcome, Phase, outcome

ANS, END, RUN, IGN, REF, APP = (Outcome.ANSWER_OFFER, Outcome.END_CALL, Outcome.HANDLE,
                                Outcome.IGNORE, Outcome.REFUSE, Outcome.APPLY_ANSWER)

# A re-INVITE or UPDATE is answered wherever there is media; a caller gone (or their media dead)
# ends the call in every phase (abandoned in the queue, BYE to the agent); only the connected
# agent's phone may transfer (REFER), never the carrier's side; IVR keys and the queue's exit
# key are the only digits a phase takes; hold programs run on by themselves.
# phase:                  ROUTING IVR QUEUED RINGING CONNECTED ENDING
EXPECTED: dict[Input, tuple[Outcome, ...]] = {
    Input.OFFER:             (ANS, ANS, ANS, ANS, ANS, IGN),
    Input.SDP_ANSWER:        (APP, APP, APP, APP, APP, IGN),
    Input.CALLER_HUNG_UP:    (END, END, END, END, END, IGN),
    Input.CALLER_MEDIA_LOST: (END, END, END, END, END, IGN),
    Input.DESK_HANGUP:       (END, END, END, END, END, IGN),
    Input.AGENT_HUNG_UP:     (IGN, IGN, IGN, IGN, RUN, IGN),
    Input.AGENT_MEDIA_LOST:  (IGN, IGN, IGN, IGN, RUN, IGN),
    Input.LEG_PROGRESS:      (RUN, IGN, RUN, RUN, RUN, IGN),
    Input.REFER_BY_AGENT:    (REF, REF, REF, REF, RUN, REF),
    Input.REFER_BY_OTHER:    (REF, REF, REF, REF, REF, REF),
    Input.DTMF:              (IGN, RUN, RUN, IGN, IGN, IGN),
    Input.PLAYBACK_END:      (IGN, RUN, IGN, IGN, IGN, IGN),
    Input.CUSTOMER_FOUND:    (IGN, RUN, IGN, IGN, IGN, IGN),
    Input.ACD_ORDER:         (IGN, IGN, RUN, IGN, IGN, IGN),
    Input.DIALER_ORDER:      (RUN, IGN, RUN, IGN, IGN, IGN),
    Input.DESK_ORDER:        (IGN, IGN, RUN, IGN, RUN, IGN),
    Input.REPLACES:          (REF, REF, REF, REF, RUN, REF),
}
PHASES = (Phase.ROUTING, Phase.IVR, Phase.QUEUED, Phase.RINGING, Phase.CONNECTED, Phase.ENDING)


def test_every_phase_and_input_has_an_outcome() -> None:
    assert set(OUTCOMES) == {(phase, kind) for phase in Phase for kind in Input}
    assert set(EXPECTED) == set(Input) and set(PHASES) == set(Phase)


@pytest.mark.parametrize("kind", list(Input))
@pytest.mark.parametrize("phase", list(PHASES))
def test_outcome(phase: Phase, kind: Input) -> None:
    assert outcome(phase, kind) is EXPECTED[kind][PHASES.index(phase)]


def test_only_the_connected_agent_may_transfer() -> None:
    allowed = [(p, k) for (p, k), o in OUTCOMES.items()
               if k in (Input.REFER_BY_AGENT, Input.REFER_BY_OTHER) and o is not Outcome.REFUSE]
    assert allowed == [(Phase.CONNECTED, Input.REFER_BY_AGENT)]
