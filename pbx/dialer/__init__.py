"""The outbound dialer: campaigns over customer groups, pacing, answered calls to agents (L2).

- `schema`: campaign settings (pydantic, L0 in spirit: it imports only L0 modules, so that
  `pbx.config.schema` can import it); `check_dialer_config` for the cross-section checks.
- `records`: what is stored (contact states, attempts, do-not-call entries) and the
  `DialerStore` protocol `pbx.storage.dialer` implements.
- `campaign`: `Campaign`, the contact book — who is due, calling hours in the customer's
  time zone, the do-not-call list, attempts, retries per result, drop lock-outs, final states.
- `events`: what the pacer is told (`CallAnswered`, `AgentsChanged` …) and what it asks for
  (`DialContact`, `ConnectAnsweredCall`, `DropCall`, `SaveContact` …).
- `pacing`: `Pacer` — ``handle(event, now) -> commands``, ``next_deadline()``; preview,
  progressive and predictive dialling under an abandon-rate cap.
- `amd`: answering-machine detection from the first seconds of audio (numpy).
- `simulate`: a campaign day around the real pacer, to compare dial modes.

Nothing is imported here, so that importing `pbx.dialer.schema` stays light.
"""
