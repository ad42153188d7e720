"""The IVR: callers walking through YAML flows of named nodes (L2, sans-IO).

- `schema`: the flow, DID route and customer seed models; a built `FlowConfig` is
  structurally sound (targets, reachability, loops without a wait). Imported by
  `pbx.config.schema`, so it imports nothing from `pbx.config`.
- `validation`: checks against the installation (prompt files, queues, agents, hooks) and of
  DID routes and customer seeds, as ``(key path, message)`` for the config loader.
- `runner`: `IvrSession`, one caller in one flow: events in, commands out, one deadline.
- `visits`: what each node type does; `conditions`: branch conditions, business hours;
  `templates`: ``{variable}`` prompt and value templates; `hooks`: the admin's own programs.
- `events`: the IVR's own messages beside `pbx.call.events` (`LookupCustomer`,
  `CustomerFound`, `EnqueueCall`, `TimerFired`) and its `IvrOutcome`.

Nothing is imported here, so that importing `pbx.ivr.schema` stays light.
"""
