"""What an installed PBX brings besides its code (package data, L0: paths only).

`PROMPTS` holds the announcements and music every flow, queue and campaign of the example
uses (``de/…``, ``en/…``, ``music/…``); it is the prompts directory whenever a configuration
sets no ``media.prompts_dir``. `EXAMPLE_CONFIG` is the example call center
(``config/pbx.yaml`` of the source tree), which ``pbx init DIR`` copies into DIR together
with the prompts. In a source checkout both are symbolic links to ``prompts/`` and
``config/pbx.yaml``; a wheel carries the files themselves.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
PROMPTS = PACKAGE_DIR / "prompts"
EXAMPLE_CONFIG = PACKAGE_DIR / "pbx.yaml"
