"""Build the announcement prompts and the hold music: ``python -m media.build_prompts prompts``.

Each prompt text is spoken by espeak-ng (German and English voices), then sox converts it to
what the engine plays best: 8 kHz, mono, 16-bit PCM WAV, high-passed, normalised to -3 dBFS,
with a little silence around it. The hold music is synthesised with numpy (`media.music`), so it
is royalty-free by construction. The results are committed, so running the PBX needs neither
espeak-ng nor sox; the admin may replace any file with a real recording of any WAV format.

Layout::

    prompts/<lang>/<name>.wav            greeting, main_menu, ... (see PROMPTS)
    prompts/<lang>/numbers/<n>.wav       0-30, 40, 50, ..., 100 for position and wait readout
    prompts/<lang>/ad_1.wav ...          product ads for the queue-hold program
    prompts/music/hold_music.wav         music on hold
    prompts/README.md                    the catalogue: every file and what it says
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import wave
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from media.music import SAMPLE_RATE, synthesize_hold_music

COMPANY: Final = "Lumenwerk"  # fictional company; its products below are fictional too

VOICES: Final = {"de": "de", "en": "en-us"}
SPEED_WPM: Final = {"de": 150, "en": 155}

PROMPTS: Final[dict[str, dict[str, str]]] = {
    "greeting": {
        "de": f"Willkommen bei der Kundenhotline von {COMPANY}.",
        "en": f"Welcome to the {COMPANY} customer hotline.",
    },
    "main_menu": {
        "de": "Für Fragen zu einer Bestellung drücken Sie die 1. Für den technischen Support "
        "drücken Sie die 2. Für Fragen zu Ihrer Rechnung drücken Sie die 3. Um dieses Menü "
        "zu wiederholen, drücken Sie die Sterntaste.",
        "en": "For questions about an order, press 1. For technical support, press 2. For "
        "billing questions, press 3. To hear this menu again, press star.",
    },
    "language_menu": {
        "de": "Für Deutsch drücken Sie die 1. For English, press 2.",
        "en": "Für Deutsch drücken Sie die 1. For English, press 2.",
    },
    "concern_menu": {
        "de": "Bei Fragen zu Ihrer Rechnung drücken Sie die 1. Für den technischen Support "
        "drücken Sie die 2. Bei Fragen zu Ihrem Vertrag drücken Sie die 3. Um mit einem "
        "Mitarbeiter zu sprechen, drücken Sie die 0.",
        "en": "For billing, press 1. For technical support, press 2. For questions about "
        "your contract, press 3. To speak to an agent, press 0.",
    },
    "you_entered": {
        "de": "Sie haben eingegeben:",
        "en": "You entered:",
    },
    "confirm_entry": {
        "de": "Wenn das richtig ist, drücken Sie die 1. Um die Eingabe zu wiederholen, "
        "drücken Sie die 2.",
        "en": "If this is correct, press 1. To enter it again, press 2.",
    },
    "enter_customer_number": {
        "de": "Bitte geben Sie Ihre Kundennummer ein und schließen Sie die Eingabe mit der "
        "Rautetaste ab.",
        "en": "Please enter your customer number, followed by the hash key.",
    },
    "invalid_entry": {
        "de": "Diese Eingabe ist leider ungültig. Bitte versuchen Sie es noch einmal.",
        "en": "Sorry, that entry is not valid. Please try again.",
    },
    "customer_not_found": {
        "de": "Zu dieser Kundennummer haben wir leider keinen Eintrag gefunden.",
        "en": "Sorry, we could not find that customer number.",
    },
    "please_hold": {
        "de": "Bitte bleiben Sie in der Leitung. Der nächste freie Mitarbeiter ist gleich für "
        "Sie da.",
        "en": "Please hold the line. The next available agent will be with you shortly.",
    },
    "all_agents_busy": {
        "de": "Zurzeit sind alle Mitarbeiter im Gespräch.",
        "en": "All our agents are currently busy.",
    },
    "thank_you_for_waiting": {
        "de": "Vielen Dank für Ihre Geduld. Sie werden so schnell wie möglich verbunden.",
        "en": "Thank you for your patience. You will be connected as soon as possible.",
    },
    "you_are_caller": {
        "de": "Sie sind Anrufer Nummer",
        "en": "You are caller number",
    },
    "in_the_queue": {
        "de": "in der Warteschlange.",
        "en": "in the queue.",
    },
    "estimated_wait": {
        "de": "Ihre voraussichtliche Wartezeit beträgt",
        "en": "Your estimated waiting time is",
    },
    "minute": {"de": "Minute.", "en": "minute."},
    "minutes": {"de": "Minuten.", "en": "minutes."},
    "less_than_one_minute": {
        "de": "weniger als eine Minute.",
        "en": "less than one minute.",
    },
    "connecting": {
        "de": "Sie werden jetzt verbunden.",
        "en": "Connecting you now.",
    },
    "transferring": {
        "de": "Einen Moment bitte, ich verbinde Sie weiter.",
        "en": "One moment please, I am transferring your call.",
    },
    "closed": {
        "de": "Unsere Hotline ist zurzeit nicht besetzt. Sie erreichen uns montags bis freitags "
        "von 8 bis 18 Uhr.",
        "en": "Our hotline is currently closed. You can reach us Monday to Friday from 8 am to "
        "6 pm.",
    },
    "goodbye": {
        "de": "Vielen Dank für Ihren Anruf. Auf Wiederhören.",
        "en": "Thank you for calling. Goodbye.",
    },
    "ad_1": {
        "de": f"Schon gewusst? Mit {COMPANY} Cloud Safe sichern Sie Ihre Fotos und Dokumente "
        "automatisch, verschlüsselt und in deutschen Rechenzentren. Jetzt einen Monat "
        "kostenlos testen.",
        "en": f"Did you know? {COMPANY} Cloud Safe backs up your photos and documents "
        "automatically and encrypted. Try it free for one month.",
    },
    "ad_2": {
        "de": f"Das neue {COMPANY} Heizungsthermostat lernt Ihren Tagesablauf und spart bis zu "
        "zwanzig Prozent Heizkosten. Fragen Sie unsere Mitarbeiter nach dem Einführungsangebot.",
        "en": f"The new {COMPANY} smart thermostat learns your daily routine and saves up to "
        "twenty percent on heating. Ask our agents about the launch offer.",
    },
    "ad_3": {
        "de": f"Mit {COMPANY} Premium Support erreichen Sie uns rund um die Uhr, ohne "
        "Wartezeit, über eine eigene Rufnummer. Mehr dazu in Ihrem Kundenkonto.",
        "en": f"With {COMPANY} Premium Support you reach us around the clock, without waiting, "
        "on a number of your own. Find out more in your customer account.",
    },
}

NUMBERS: Final = tuple(range(31)) + (40, 50, 60, 70, 80, 90, 100)
MUSIC_SECONDS: Final = 32.0


def _run(command: Sequence[str]) -> None:
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {result.stderr.strip()}")


def speak(text: str, language: str, target: Path, espeak: str = "espeak-ng",
          sox: str = "sox") -> None:
    """Speak ``text`` into ``target`` as 8 kHz mono 16-bit WAV."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        raw = Path(scratch) / "raw.wav"
        _run([espeak, "-v", VOICES[language], "-s", str(SPEED_WPM[language]), "-w", str(raw),
              text])
        _run([sox, str(raw), "-b", "16", "-c", "1", "-e", "signed-integer", str(target),
              "highpass", "120",
              # trim espeak's own leading and trailing silence, then add a short, even margin
              "silence", "1", "0.01", "0.5%", "reverse", "silence", "1", "0.01", "0.5%", "reverse",
              "rate", "-v", str(SAMPLE_RATE), "norm", "-3", "pad", "0.05", "0.2"])


def write_music(target: Path, seconds: float = MUSIC_SECONDS) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    samples = synthesize_hold_music(seconds)
    with wave.open(str(target), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(SAMPLE_RATE)
        wav.writeframes(samples.astype("<i2").tobytes())


def _catalogue(languages: Sequence[str]) -> str:
    lines = [
        "# Prompts",
        "",
        "Generated by `make prompts` (`python -m media.build_prompts prompts`) with espeak-ng",
        "and sox: 8 kHz, mono, 16-bit WAV. Replace any file with a real recording (any WAV",
        "rate and format; the engine converts at load). The hold music is synthesised with",
        "numpy (`media/music.py`). "
        f"{COMPANY} and its products are fictional.",
        "",
        "| file | text |",
        "|---|---|",
    ]
    for language in languages:
        for name, texts in PROMPTS.items():
            lines.append(f"| `{language}/{name}.wav` | {texts[language]} |")
        numbers = ", ".join(str(n) for n in NUMBERS)
        lines.append(f"| `{language}/numbers/<n>.wav` | the number n, for n in {numbers} |")
    lines.append("| `music/hold_music.wav` | music on hold, "
                 f"{MUSIC_SECONDS:.0f} s, loops cleanly |")
    return "\n".join(lines) + "\n"


def build(directory: Path, languages: Sequence[str] = ("de", "en"), *,
          only: Sequence[str] = ()) -> list[Path]:
    """Build every prompt (or only the named ones) under ``directory``; returns the files."""
    for tool in ("espeak-ng", "sox"):
        if shutil.which(tool) is None:
            raise RuntimeError(f"{tool} is not installed (apt-get install espeak-ng sox)")
    written = []
    for language in languages:
        if language not in VOICES:
            raise ValueError(f"no voice for language {language!r}: expected one of {VOICES}")
        for name, texts in PROMPTS.items():
            if only and name not in only:
                continue
            target = directory / language / f"{name}.wav"
            speak(texts[language], language, target)
            written.append(target)
        if not only or "numbers" in only:
            for number in NUMBERS:
                target = directory / language / "numbers" / f"{number}.wav"
                speak(str(number), language, target)
                written.append(target)
    if not only or "music" in only:
        target = directory / "music" / "hold_music.wav"
        write_music(target)
        written.append(target)
    (directory / "README.md").write_text(_catalogue(languages))
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("directory", type=Path, help="where to write (e.g. prompts)")
    parser.add_argument("--lang", nargs="+", default=["de", "en"], choices=sorted(VOICES))
    parser.add_argument("--only", nargs="*", default=[],
                        help="prompt names to rebuild ('numbers', 'music' for those groups)")
    args = parser.parse_args(argv)
    try:
        files = build(args.directory, args.lang, only=args.only)
    except (RuntimeError, ValueError) as error:
        print(f"build_prompts: {error}", file=sys.stderr)
        return 1
    size = sum(path.stat().st_size for path in files)
    print(f"wrote {len(files)} files, {size / 1e6:.1f} MB, under {args.directory}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
