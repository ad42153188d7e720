"""`pbx customers import|export` and `pbx dnc import|add|remove|list` — L4: customer and
do-not-call lists of a running PBX, through its admin API (`pbx.cti.admin`) with an API token
of scope ``customers``.

The CLI reads the CSV file itself (`pbx.customers.csvfile`: the mapping, line numbers, rows
the file makes unusable) and sends the rows in batches small enough for ``http.max_body_bytes``;
the PBX validates every value with its own configuration (statuses, agents, the home country
for phone numbers) and stores them, so the running PBX and its caches stay right and nobody
writes its database behind its back. Exit status: 0 every row stored, 2 some rows rejected
(the others stored; each rejected one printed as ``FILE:LINE: …``), 1 nothing could be done.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from pbx.cli_api import ApiError, add_api_arguments, request_api
from pbx.config.schema import PbxConfig, format_loc
from pbx.customers import csvfile

BATCH_BYTES = 48_000  # below the default http.max_body_bytes (65536) with room to spare
BATCH_ROWS = 2000
SCOPE = "customers"


class CliError(Exception):
    """One line for stderr."""


def register(sub: Any) -> None:
    customers = sub.add_parser("customers", help="import and export the customer directory of "
                                                 "a running PBX (token scope 'customers')")
    verbs = customers.add_subparsers(dest="customers_command", required=True)
    imp = verbs.add_parser("import", help="create or update customers from a CSV file "
                                          "(by customer_no: a re-import never duplicates)")
    imp.add_argument("file", help="CSV file with a header line")
    imp.add_argument("--map", dest="mapping", metavar="ATTR=COLUMN,...",
                     help="which column feeds which attribute, e.g. customer_no=KdNr,name=Name,"
                          "phones=Telefon+Mobil,fields.contract=Vertrag (default: headers that "
                          "name attributes)")
    imp.add_argument("--group", action="append", default=[], metavar="GROUP",
                     help="add every imported customer to GROUP (repeatable)")
    imp.add_argument("--dry-run", action="store_true",
                     help="check every row and report, store nothing")
    _file_options(imp)
    add_api_arguments(imp)
    imp.set_defaults(handler=_import_customers)
    exp = verbs.add_parser("export", help="write the customers as CSV (or JSON)")
    exp.add_argument("--group", help="only the customers of this group")
    exp.add_argument("--format", choices=("csv", "json"), default="csv")
    exp.add_argument("--output", "-o", help="file to write (default: standard output)")
    add_api_arguments(exp)
    exp.set_defaults(handler=_export_customers)

    dnc = sub.add_parser("dnc", help="the do-not-call list of a running PBX (token scope "
                                     "'customers')")
    dverbs = dnc.add_subparsers(dest="dnc_command", required=True)
    dimp = dverbs.add_parser("import", help="add the numbers of a CSV file")
    dimp.add_argument("file", help="CSV file: a number column (and optionally reason)")
    dimp.add_argument("--column", help="the header of the number column")
    dimp.add_argument("--reason", default="import", help="reason stored with each number")
    dimp.add_argument("--dry-run", action="store_true", help="check and report, store nothing")
    _file_options(dimp)
    add_api_arguments(dimp)
    dimp.set_defaults(handler=_import_dnc)
    add = dverbs.add_parser("add", help="add numbers")
    add.add_argument("numbers", nargs="+")
    add.add_argument("--reason", default="cli")
    add_api_arguments(add)
    add.set_defaults(handler=_add_dnc)
    remove = dverbs.add_parser("remove", help="take a number off the list")
    remove.add_argument("number")
    add_api_arguments(remove)
    remove.set_defaults(handler=_remove_dnc)
    listing = dverbs.add_parser("list", help="print the list")
    listing.add_argument("--json", action="store_true")
    add_api_arguments(listing)
    listing.set_defaults(handler=_list_dnc)


def _file_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--delimiter", help="cell separator (default: guessed from the header "
                                            "among , ; TAB |)")
    parser.add_argument("--encoding", default="utf-8-sig",
                        help="the file's encoding (default UTF-8; e.g. cp1252 for old Excel)")


def _fail(prog: str, message: str) -> int:
    print(f"{prog}: {message}", file=sys.stderr)
    return 1


def _read(args: argparse.Namespace) -> str:
    path = Path(args.file)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}") from None
    try:
        return data.decode(args.encoding)
    except LookupError:
        raise CliError(f"unknown encoding {args.encoding!r}") from None
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise CliError(f"{path}:{line}: not {args.encoding} text; give the file's encoding "
                       "with --encoding (e.g. cp1252)") from None


def _batches(rows: Sequence[Mapping[str, Any]]) -> Iterator[list[Mapping[str, Any]]]:
    batch: list[Mapping[str, Any]] = []
    size = 0
    for row in rows:
        length = len(json.dumps(row)) + 2
        if batch and (size + length > BATCH_BYTES or len(batch) >= BATCH_ROWS):
            yield batch
            batch, size = [], 0
        batch.append(row)
        size += length
    if batch:
        yield batch


def _report(file: str | None, rejected: list[tuple[int, str, str]], summary: str) -> int:
    # `file` None: the rows were command-line arguments, numbered from 1.
    print(summary)
    for line, key, reason in sorted(rejected):
        where = f"{file}:{line}" if file is not None else f"argument {line}"
        print(f"{where}: {key + ': ' if key else ''}{reason}", file=sys.stderr)
    return 2 if rejected else 0


def _import_customers(args: argparse.Namespace) -> int:
    prog = "pbx customers import"
    try:
        mapping = csvfile.parse_mapping(args.mapping) if args.mapping else None
    except ValueError as exc:
        return _fail(prog, f"--map: {exc}")
    delimiter = _delimiter(args)
    try:
        table = csvfile.read_customers(_read(args), mapping, delimiter)
    except CliError as exc:
        return _fail(prog, str(exc))
    except csvfile.CsvFileError as exc:
        return _fail(prog, f"{args.file}: {exc}")
    rejected = [(r.line, r.key, r.reason) for r in table.rejected]
    rows: list[Mapping[str, Any]] = []
    for row in table.rows:
        record = {"line": row.line, **row.values}
        if len(json.dumps(record)) > BATCH_BYTES:
            rejected.append((row.line, str(row.values.get("customer_no", "")),
                             "the row is too large for one request"))
            continue
        rows.append(record)
    created = updated = unchanged = 0
    try:
        for batch in _batches(rows):
            answer = request_api(args, "/api/admin/imports/customers", SCOPE, method="POST",
                                 body={"rows": batch, "groups": args.group,
                                       "dry_run": args.dry_run})
            created += len(answer["created"])
            updated += len(answer["updated"])
            unchanged += int(answer["unchanged"])
            rejected += [(r["line"], r["customer_no"], r["reason"]) for r in answer["rejected"]]
    except ApiError as exc:
        stored = "" if args.dry_run or not (created or updated) else (
            f" ({created} created and {updated} updated before it)")
        return _fail(prog, f"{exc}{stored}")
    verb = "would be" if args.dry_run else ""
    summary = (f"{args.file}: {created} {verb + ' ' if verb else ''}created, {updated} "
               f"{verb + ' ' if verb else ''}updated, {unchanged} unchanged, "
               f"{len(rejected)} rejected")
    if args.dry_run:
        summary += " (dry run: nothing stored)"
    if table.ignored_columns:
        summary += "\nignored columns: " + ", ".join(table.ignored_columns)
    return _report(args.file, rejected, summary)


def _delimiter(args: argparse.Namespace) -> str | None:
    value: str | None = args.delimiter
    if value in ("\\t", "tab", "TAB"):
        return "\t"
    return value


def _export_customers(args: argparse.Namespace) -> int:
    prog = "pbx customers export"
    query = {"format": args.format, **({"group": args.group} if args.group else {})}
    try:
        data: bytes = request_api(args, "/api/admin/customers?" + urllib.parse.urlencode(query),
                                  SCOPE, raw=True)
    except ApiError as exc:
        return _fail(prog, str(exc))
    if args.format == "json":
        data = (json.dumps(json.loads(data), indent=2, ensure_ascii=False) + "\n").encode()
    if args.output:
        try:
            Path(args.output).write_bytes(data)
        except OSError as exc:
            return _fail(prog, f"cannot write {args.output}: {exc.strerror}")
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    return 0


def _send_dnc(args: argparse.Namespace, prog: str, rows: list[dict[str, Any]],
              rejected: list[tuple[int, str, str]], dry_run: bool) -> int:
    added: list[str] = []
    already = 0
    try:
        for batch in _batches(rows):
            answer = request_api(args, "/api/admin/dnc", SCOPE, method="POST",
                                 body={"rows": batch, "reason": args.reason,
                                       "dry_run": dry_run})
            added += answer["added"]
            already += len(answer["already_listed"])
            rejected += [(r["line"], r["number"], r["reason"]) for r in answer["rejected"]]
    except ApiError as exc:
        return _fail(prog, str(exc))
    verb = "would be added" if dry_run else "added"
    file: str | None = getattr(args, "file", None)
    summary = (f"{file or 'numbers'}: {len(added)} {verb}, {already} already listed, "
               f"{len(rejected)} rejected")
    if dry_run:
        summary += " (dry run: nothing stored)"
    return _report(file, rejected, summary)


def _import_dnc(args: argparse.Namespace) -> int:
    prog = "pbx dnc import"
    try:
        rows, bad = csvfile.read_numbers(_read(args), args.column, _delimiter(args))
    except CliError as exc:
        return _fail(prog, str(exc))
    except csvfile.CsvFileError as exc:
        return _fail(prog, f"{args.file}: {exc}")
    return _send_dnc(args, prog, [{"line": r.line, **r.values} for r in rows],
                     [(r.line, r.key, r.reason) for r in bad], args.dry_run)


def _add_dnc(args: argparse.Namespace) -> int:
    rows = [{"line": i, "number": n} for i, n in enumerate(args.numbers, 1)]
    return _send_dnc(args, "pbx dnc add", rows, [], False)


def _remove_dnc(args: argparse.Namespace) -> int:
    path = "/api/admin/dnc/" + urllib.parse.quote(args.number, safe="")
    try:
        answer = request_api(args, path, SCOPE, method="DELETE")
    except ApiError as exc:
        return _fail("pbx dnc remove", str(exc))
    print(f"{answer['removed']} removed from the do-not-call list")
    return 0


def _list_dnc(args: argparse.Namespace) -> int:
    try:
        answer = request_api(args, "/api/admin/dnc", SCOPE)
    except ApiError as exc:
        return _fail("pbx dnc list", str(exc))
    if args.json:
        print(json.dumps(answer, indent=2, sort_keys=True))
        return 0
    entries = answer["dnc"]
    width = max([len("NUMBER"), *(len(e["number"]) for e in entries)])
    print(f"{'NUMBER'.ljust(width)}  {'ADDED'.ljust(25)}  REASON")
    for entry in entries:
        print(f"{entry['number'].ljust(width)}  {entry['added_at'].ljust(25)}  "
              f"{entry['reason']}".rstrip())
    return 0


# ---------------------------------------------------------------------- check-config


def campaign_warnings(config: PbxConfig) -> list[str]:
    """`pbx check-config`'s warnings (``KEY: warning: …``, printed after the file name, never
    fatal) for campaigns whose target matches no customer: none of the configuration's seed,
    and none stored in the database it names (read when it exists; a database that cannot be
    read is said, not an error)."""
    from pbx.customers import records

    nobody = set(records.targets_nobody(config.campaigns,
                                        [c.to_customer() for c in config.customers]))
    if not nobody:
        return []
    stored, problem = _stored_targets(config, nobody)
    warnings = []
    for index, campaign in enumerate(config.campaigns):
        if campaign.name not in nobody or stored.get(campaign.name):
            continue
        where = format_loc(("campaigns", index, "target"))
        if campaign.name in stored:
            warnings.append(f"{where}: warning: campaign {campaign.name!r} targets nobody: no "
                            "customer of the seed or the database matches it")
        else:
            warnings.append(f"{where}: warning: campaign {campaign.name!r} targets no customer "
                            f"of the seed (customers:); the database was not read ({problem})")
    return warnings


def _stored_targets(config: PbxConfig, names: set[str]) -> tuple[dict[str, int], str]:
    # How many stored customers each campaign's target matches; ({}, why) when unreadable.
    from sqlalchemy.engine import make_url

    from pbx.storage import Database, StorageError
    from pbx.storage.database import create_engine_for

    url = config.database_url
    try:
        parsed = make_url(url)
    except Exception as exc:  # noqa: BLE001 - any bad URL is only a note here
        return {}, f"bad URL: {exc}"
    if parsed.get_backend_name() == "sqlite":
        if not parsed.database or not Path(parsed.database).expanduser().is_file():
            return {}, f"no database file {parsed.database or ':memory:'} yet"
    else:
        url = parsed.update_query_dict({"connect_timeout": "5"}).render_as_string(False)
    try:
        db = Database(create_engine_for(url))
    except StorageError as exc:
        return {}, str(exc)
    try:
        store = db.dialer_store()
        return {c.name: store.count_targets(c.target) for c in config.campaigns
                if c.name in names}, ""
    except StorageError as exc:
        return {}, str(exc)
    finally:
        db.close()
