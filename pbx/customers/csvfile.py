"""Customer and do-not-call lists as CSV files — pure (L0): reading with a column mapping, and
writing the export.

Theory of operation. The first line is the header. A *mapping* says which column feeds which
attribute of a customer: ``customer_no``, ``name``, ``phones``, ``status``, ``language``,
``groups``, ``pinned_agents`` and ``fields.<key>`` (free-form data the forms show). Without
one, a header that names an attribute (case and surrounding blanks ignored; ``phone``,
``group`` and ``pinned_agent`` too) feeds it, so an exported file reads back unchanged. The
list attributes may come from several columns (``phones=Telefon+Mobil``) and a cell may hold
several values separated by ``|``, ``;`` or ``,``. Columns the mapping leaves out are listed
as ignored, never guessed.

Reading keeps every row's line number in the file (a quoted cell may span lines: the row's
first line counts) so that whoever validates the rows can name the line. Rows the file itself
makes unusable — a cell count that does not fit the header, no customer number, a customer
number already on an earlier line — are rejected here with their line; the rest go on as
`CsvRow` values, which hold only the non-empty cells (an empty cell leaves the stored value as
it is). Values are not checked here: `pbx.customers.records` does that, with the PBX's
configuration, where the rows are stored.

File-level problems (no header, a mapped column that is not in the header, a mapping that
names an unknown attribute) raise `CsvFileError` naming the line.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

SCALARS = ("customer_no", "name", "status", "language")
LISTS = ("phones", "groups", "pinned_agents")
TARGETS = SCALARS + LISTS
EXPORT_COLUMNS = ("customer_no", "name", "phones", "status", "language", "groups",
                  "pinned_agents")
FIELD_PREFIX = "fields."
_ALIASES = {"phone": "phones", "group": "groups", "pinned_agent": "pinned_agents"}
_LIST_SEPARATORS = re.compile(r"[|;,]")
EXPORT_LIST_SEPARATOR = "|"
DELIMITERS = ",;\t|"
# The number column of a do-not-call file, when not named: the first of these headers.
NUMBER_HEADERS = ("number", "phone", "nummer", "telefon", "rufnummer", "e164")


class CsvFileError(ValueError):
    """The file cannot be read as a list at all; the message names the line."""


@dataclass(frozen=True, slots=True)
class CsvRejection:
    """A row that is not stored: its line in the file, its customer number (or phone
    number, for a do-not-call list; "" when it has none) and why."""

    line: int
    key: str
    reason: str


@dataclass(frozen=True, slots=True)
class CsvRow:
    """One usable row: its line and the attributes its non-empty cells give, in the shape
    the admin API takes (`values`: strings, lists of strings for the lists, a dict for
    ``fields``)."""

    line: int
    values: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class CustomerTable:
    rows: tuple[CsvRow, ...]
    rejected: tuple[CsvRejection, ...]
    ignored_columns: tuple[str, ...]
    mapping: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection): the
# export writes free text (names, fields: what agents type) with a leading ', which a
# spreadsheet hides and `read_customers` removes again.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _defused(text: str) -> str:
    return "'" + text if text.startswith(_FORMULA_START) else text


def _undefused(text: str) -> str:
    return text[1:] if text.startswith("'") and text[1:].startswith(_FORMULA_START) else text


def parse_mapping(text: str) -> dict[str, tuple[str, ...]]:
    """``"customer_no=KdNr,name=Name,phones=Tel+Mobil,fields.contract=Vertrag"`` ->
    ``{attribute: (column, …)}``. Raises ValueError naming the bad part."""
    mapping: dict[str, tuple[str, ...]] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        target, sep, columns = part.partition("=")
        target = _ALIASES.get(target.strip(), target.strip())
        names = tuple(c.strip() for c in columns.split("+") if c.strip())
        if not sep or not names:
            raise ValueError(f"{part!r}: write attribute=Column (like name=Name)")
        _check_target(target)
        if len(names) > 1 and target not in LISTS:
            raise ValueError(f"{part!r}: only {', '.join(LISTS)} may come from several columns")
        if target in mapping:
            raise ValueError(f"{target!r} is mapped twice")
        mapping[target] = names
    return mapping


def _check_target(target: str) -> None:
    if target in TARGETS:
        return
    if target.startswith(FIELD_PREFIX) and re.match(
            r"^[A-Za-z_][A-Za-z0-9_]{0,63}$", target[len(FIELD_PREFIX):]):
        return
    raise ValueError(f"{target!r} is not an attribute ({', '.join(TARGETS)} or "
                     "fields.<key>, key of letters, digits, '_')")


def _default_target(header: str) -> str | None:
    name = header.strip()
    lowered = name.lower()
    if lowered in TARGETS:
        return lowered
    if lowered in _ALIASES:
        return _ALIASES[lowered]
    if lowered.startswith(FIELD_PREFIX):
        try:
            _check_target(FIELD_PREFIX + name[len(FIELD_PREFIX):])
        except ValueError:
            return None
        return FIELD_PREFIX + name[len(FIELD_PREFIX):]
    return None


def split_list(cell: str) -> list[str]:
    """The values of a list cell (``a|b``, ``a; b``, ``a,b``), blanks dropped."""
    return [value.strip() for value in _LIST_SEPARATORS.split(cell) if value.strip()]


def _reader(text: str, delimiter: str | None) -> Iterator[list[str]]:
    text = text.removeprefix("\ufeff")  # a BOM, as spreadsheet programs write
    if delimiter is None:
        first = text.split("\n", 1)[0]
        # The header decides: the candidate that occurs in it most (a one-column file: ",").
        counts = {d: first.count(d) for d in DELIMITERS}
        delimiter = max(counts, key=lambda d: counts[d]) if any(counts.values()) else ","
    return csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)


def _rows(text: str, delimiter: str | None) -> tuple[list[str], Iterable[tuple[int, list[str]]]]:
    raw = _reader(text, delimiter)
    try:
        header = next(raw)
    except StopIteration:
        raise CsvFileError("line 1: the file is empty (a header line is needed)") from None
    except csv.Error as exc:
        raise CsvFileError(f"line 1: {exc}") from None
    header = [h.strip() for h in header]
    if not any(header):
        raise CsvFileError("line 1: the header line is empty")
    seen: dict[str, int] = {}
    for index, name in enumerate(header):
        if name and name in seen:
            raise CsvFileError(f"line 1: column {name!r} appears twice "
                               f"(columns {seen[name] + 1} and {index + 1})")
        seen[name] = index

    def rows() -> Iterable[tuple[int, list[str]]]:
        line = raw.line_num  # type: ignore[attr-defined]
        while True:
            try:
                cells = next(raw)
            except StopIteration:
                return
            except csv.Error as exc:
                raise CsvFileError(f"line {line + 1}: {exc}") from None
            start, line = line + 1, raw.line_num  # type: ignore[attr-defined]
            if cells and any(c.strip() for c in cells):
                yield start, cells

    return header, rows()


def read_customers(text: str, mapping: Mapping[str, Sequence[str]] | None = None,
                   delimiter: str | None = None) -> CustomerTable:
    """Read a customer list (see the module docstring). Raises `CsvFileError`."""
    header, rows = _rows(text, delimiter)
    index = {name: i for i, name in enumerate(header) if name}
    if mapping:
        chosen = {target: tuple(_column(c, header, target) for c in columns)
                  for target, columns in mapping.items()}
        for target in chosen:
            _check_target(target)
    else:
        chosen = {}
        for name in header:
            found = _default_target(name)
            if found is not None:
                chosen[found] = (*chosen.get(found, ()), name) if found in LISTS else (name,)
    if "customer_no" not in chosen:
        raise CsvFileError("line 1: no column for customer_no (name one in the header, or "
                           "map it: --map customer_no=COLUMN)")
    used = {column for columns in chosen.values() for column in columns}
    ignored = tuple(name for name in header if name and name not in used)
    out: list[CsvRow] = []
    rejected: list[CsvRejection] = []
    first_line: dict[str, int] = {}
    for line, cells in rows:
        key_cell = cells[index[chosen["customer_no"][0]]].strip() \
            if index[chosen["customer_no"][0]] < len(cells) else ""
        if len(cells) != len(header):
            rejected.append(CsvRejection(line, key_cell, f"{len(cells)} cells, the header has "
                                                         f"{len(header)} columns"))
            continue
        if not key_cell:
            rejected.append(CsvRejection(line, "", "no customer number"))
            continue
        if key_cell in first_line:
            rejected.append(CsvRejection(line, key_cell, "customer number already on line "
                                                         f"{first_line[key_cell]}"))
            continue
        first_line[key_cell] = line
        out.append(CsvRow(line, _values(cells, index, chosen)))
    return CustomerTable(tuple(out), tuple(rejected), ignored, chosen)


def _column(name: str, header: list[str], target: str) -> str:
    # The header's spelling of a mapped column; case is forgiven when it is unambiguous.
    if name in header:
        return name
    alike = [h for h in header if h.lower() == name.lower()]
    if len(alike) == 1:
        return alike[0]
    raise CsvFileError(f"line 1: no column {name!r} (for {target}); the header has "
                       f"{', '.join(repr(h) for h in header)}")


def _values(cells: list[str], index: Mapping[str, int],
            chosen: Mapping[str, tuple[str, ...]]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    fields: dict[str, str] = {}
    for target, columns in chosen.items():
        if target in LISTS:
            items = [v for column in columns for v in split_list(cells[index[column]])]
            if items:
                values[target] = items
            continue
        cell = cells[index[columns[0]]].strip()
        if not cell:
            continue
        if target.startswith(FIELD_PREFIX):
            fields[target[len(FIELD_PREFIX):]] = _undefused(cell)
        else:
            values[target] = _undefused(cell) if target == "name" else cell
    if fields:
        values["fields"] = fields
    return values


def read_numbers(text: str, column: str | None = None,
                 delimiter: str | None = None) -> tuple[list[CsvRow], list[CsvRejection]]:
    """Read a do-not-call list: the number column (`column`, else the first header among
    `NUMBER_HEADERS`, else the only column) and an optional ``reason`` (or ``grund``) column.
    A file whose first line is a number has no header. Rows: ``{"number", "reason"?}`` with
    their line."""
    stripped = text.removeprefix("\ufeff")
    first = stripped.split("\n", 1)[0].strip()
    if column is None and re.match(r"^[+0-9 ()/.-]+$", first or "x"):
        stripped = "number\n" + stripped  # no header: numbers from line 1
        offset = -1
    else:
        offset = 0
    header, rows = _rows(stripped, delimiter)
    lowered = {h.lower(): h for h in header}
    if column is not None:
        if column not in header:
            raise CsvFileError(f"line 1: no column {column!r}; the header has "
                               f"{', '.join(repr(h) for h in header)}")
        number_column = column
    else:
        found = next((lowered[h] for h in NUMBER_HEADERS if h in lowered), None)
        if found is None and len([h for h in header if h]) == 1:
            found = next(h for h in header if h)
        if found is None:
            raise CsvFileError("line 1: which column holds the numbers? name it with --column "
                               f"(the header has {', '.join(repr(h) for h in header)})")
        number_column = found
    at = header.index(number_column)
    reason_header = next((lowered[h] for h in ("reason", "grund") if h in lowered), None)
    reason_at = header.index(reason_header) if reason_header is not None else None
    out: list[CsvRow] = []
    rejected: list[CsvRejection] = []
    for line, cells in rows:
        number = cells[at].strip() if at < len(cells) else ""
        if not number:
            rejected.append(CsvRejection(line + offset, "", "no number"))
            continue
        values: dict[str, str] = {"number": number}
        if reason_at is not None and reason_at < len(cells) and cells[reason_at].strip():
            values["reason"] = cells[reason_at].strip()
        out.append(CsvRow(line + offset, values))
    return out, rejected


def write_customers(rows: Sequence[Mapping[str, Any]]) -> str:
    """The CSV export of customers given as API records (``customer_no``, ``name``,
    ``phones`` …, ``fields``): one column per attribute, one per field key found, lists
    joined with ``|``, free text that a spreadsheet would run as a formula behind a ``'``.
    `read_customers` reads it back to the same records."""
    keys = sorted({key for row in rows for key in (row.get("fields") or {})})
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([*EXPORT_COLUMNS, *(FIELD_PREFIX + key for key in keys)])
    for row in rows:
        fields = row.get("fields") or {}
        cells = [EXPORT_LIST_SEPARATOR.join(row.get(c) or ()) if c in LISTS
                 else str(row.get(c) or "") for c in EXPORT_COLUMNS]
        cells[1] = _defused(cells[1])  # the name
        cells += [_defused(str(fields.get(key, ""))) for key in keys]
        writer.writerow(cells)
    return out.getvalue()
