"""Reading customer and do-not-call CSV files: mapping, line numbers, rows the file makes
unusable; the export reads back unchanged."""

from __future__ import annotations

import pytest

from pbx.customers import csvfile
from pbx.customers.csvfile import CsvFileError, read_customers, read_numbers, write_customers


def test_headers_that_name_attributes_map_themselves_and_lines_are_kept() -> None:
    text = ("Customer_No;Name;Phone;Groups;fields.contract;Notiz\n"
            "100;Anna;030 123456;a|b;V-1;x\n"
            "\n"
            '101;"Bernd\nZweizeilig";;;;\n'
            "102;Carla;+4930999;c;;\n")
    table = read_customers(text)
    assert table.ignored_columns == ("Notiz",)
    assert [r.line for r in table.rows] == [2, 4, 6]
    assert table.rows[0].values == {"customer_no": "100", "name": "Anna",
                                    "phones": ["030 123456"], "groups": ["a", "b"],
                                    "fields": {"contract": "V-1"}}
    assert table.rows[1].values == {"customer_no": "101", "name": "Bernd\nZweizeilig"}


def test_an_explicit_mapping_with_several_phone_columns() -> None:
    assert csvfile.parse_mapping("phone=Tel,group=G") == {"phones": ("Tel",), "groups": ("G",)}
    mapping = csvfile.parse_mapping("customer_no=KdNr, name=Name, phones=Tel+Mobil,"
                                    "fields.contract=Vertrag")
    text = "KdNr,Name,Tel,Mobil,Vertrag\n7,Eva,030 1,0170 2,X\n"
    row = read_customers(text, mapping).rows[0]
    assert row.values == {"customer_no": "7", "name": "Eva", "phones": ["030 1", "0170 2"],
                          "fields": {"contract": "X"}}


def test_rows_the_file_makes_unusable_are_rejected_with_their_line() -> None:
    text = "customer_no,name\n1,A\n2\n,B\n1,Again\n3,C\n"
    table = read_customers(text)
    assert [r.values["customer_no"] for r in table.rows] == ["1", "3"]
    assert [(r.line, r.key, r.reason) for r in table.rejected] == [
        (3, "2", "1 cells, the header has 2 columns"),
        (4, "", "no customer number"),
        (5, "1", "customer number already on line 2"),
    ]


@pytest.mark.parametrize("text, mapping, message", [
    ("", None, "line 1: the file is empty"),
    ("name\nA\n", None, "no column for customer_no"),
    ("a,a\n", None, "column 'a' appears twice"),
    ("KdNr\n1\n", {"customer_no": ("Kundennummer",)}, "no column 'Kundennummer'"),
    ('customer_no,name\n1,"unterminated\n', None, "line 2"),
])
def test_file_level_problems_name_the_line(text: str, mapping: dict[str, tuple[str, ...]] | None,
                                          message: str) -> None:
    with pytest.raises(CsvFileError, match=message):
        read_customers(text, mapping)


@pytest.mark.parametrize("text, message", [
    ("customer_no=", "write attribute=Column"),
    ("colour=Farbe", "'colour' is not an attribute"),
    ("name=A+B", "only phones, groups, pinned_agents"),
    ("name=A,name=B", "mapped twice"),
])
def test_bad_mappings(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        csvfile.parse_mapping(text)


def test_export_reads_back_to_the_same_records() -> None:
    records = [
        {"customer_no": "1", "name": "Anna, die Erste", "phones": ["+491", "+492"],
         "status": "vip", "language": "de", "groups": ["a", "b"], "pinned_agents": ["1001"],
         "fields": {"contract": "X;Y", "note": 'say "hi"'}},
        {"customer_no": "2", "name": "Bernd", "phones": [], "status": "standard",
         "language": "", "groups": [], "pinned_agents": [], "fields": {}},
    ]
    table = read_customers(write_customers(records))
    assert table.ignored_columns == ()
    assert table.rows[0].values == {k: v for k, v in records[0].items()}
    assert table.rows[1].values == {"customer_no": "2", "name": "Bernd", "status": "standard"}


def test_numbers_with_or_without_a_header() -> None:
    rows, bad = read_numbers("Nummer;Reason\n030 111;asked\n;asked too\n\n+4930222;\n")
    assert [(r.line, dict(r.values)) for r in rows] == [
        (2, {"number": "030 111", "reason": "asked"}), (5, {"number": "+4930222"})]
    assert [(b.line, b.reason) for b in bad] == [(3, "no number")]
    rows, bad = read_numbers("030 111\n+4930222\n")
    assert [(r.line, r.values["number"]) for r in rows] == [(1, "030 111"), (2, "+4930222")]
    with pytest.raises(CsvFileError, match="which column"):
        read_numbers("a,b\n1,2\n")


def test_crlf_lines_and_mapped_columns_in_another_case() -> None:
    text = "KdNr,Name\r\n1,Anna\r\n\r\n2,Bernd\r\n"
    table = read_customers(text, {"customer_no": ("kdnr",), "name": ("NAME",)})
    assert [(r.line, r.values["name"]) for r in table.rows] == [(2, "Anna"), (4, "Bernd")]
    assert table.mapping == {"customer_no": ("KdNr",), "name": ("Name",)}


def test_free_text_a_spreadsheet_would_run_is_defused_and_reads_back() -> None:
    record = {"customer_no": "1", "name": "=HYPERLINK(\"http://x\")", "phones": ["+491"],
              "status": "standard", "language": "", "groups": [], "pinned_agents": [],
              "fields": {"note": "@SUM(A1)", "plain": "-5 °C", "ok": "fine"}}
    text = write_customers([record])
    row = text.splitlines()[1]
    assert "'=HYPERLINK" in row and "'@SUM(A1)" in row and "'-5 °C" in row
    assert ",+491," in row  # phone numbers are E.164 by validation, never formulas
    assert read_customers(text).rows[0].values == {k: v for k, v in record.items()
                                                   if v not in ("", [])}
