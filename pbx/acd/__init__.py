"""The ACD: queues, agents and who is offered which call (L2, pure).

- `schema`: queue and customer-status settings (pydantic). Imported by `pbx.config.schema`,
  so it imports nothing from `pbx.config` or the rest of this package.
- `model`: queued calls, agent seats and the agent state machine (a transition table).
- `events`: what the engine is told (`CallEnqueued`, `OfferAnswered` …) and what it asks for
  (`OfferCall`, `CancelOffer`, `ConnectCall`, `Announce`, `AgentStateChanged` …).
- `strategies`: the hunting strategies, plain functions registered by name.
- `hunt`, `engine`: `AcdEngine` — ``handle(event, now) -> commands``, ``next_deadline()``.
- `stats`: live queue and agent figures, and the handle times behind the EWT.
- `erlang`: Erlang C; `simulate`: a discrete-event simulation around the engine
  (``pbx simulate``); `report`: what-if hunt orders and result tables.

Nothing is imported here, so that importing `pbx.acd.schema` stays light.
"""
