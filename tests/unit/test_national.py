"""The national directory file: rows read and checked, the hierarchy read from the codes."""

from __future__ import annotations

import io

import pytest

from hub.national import Entry, NationalDirectory, RowProblem, open_text, parent_of, read_entries


@pytest.mark.parametrize(
    ("code", "parent"),
    [
        ("001.05.18.G12", "000.05.18.G12"),  # level 4 → level 3
        ("000.05.18.G12", "000.00.18.G12"),  # level 3 → level 2
        ("000.00.18.G12", "000.00.00.G12"),  # level 2 → level 1
        ("000.00.00.G12", ""),  # level 1: the top
        ("001.00.00.H26", "000.00.00.H26"),  # a level skipped: the next one in use
        ("01.02.G22", ""),  # shortened codes carry no hierarchy
        ("vxp.saas.03", ""),
    ],
)
def test_the_parent_is_read_from_the_code(code: str, parent: str) -> None:
    assert parent_of(code) == parent


def _csv(text: str) -> list[Entry | RowProblem]:
    return list(read_entries(io.StringIO(text, newline="")))


def test_csv_rows_become_entries_with_the_parent_given_or_read_from_the_code() -> None:
    rows = _csv(
        "code,name,parent\n"
        "000.00.00.H26,Ủy ban nhân dân thành phố Hà Nội,\n"
        '000.00.01.H26,"Sở Tài chính, thành phố Hà Nội",\n'
        "000.01.31.H26,Ủy ban nhân dân phường Phúc Xá,000.00.31.H26\n"
    )
    assert rows == [
        Entry("000.00.00.H26", "Ủy ban nhân dân thành phố Hà Nội", ""),
        Entry("000.00.01.H26", "Sở Tài chính, thành phố Hà Nội", "000.00.00.H26"),
        Entry("000.01.31.H26", "Ủy ban nhân dân phường Phúc Xá", "000.00.31.H26"),
    ]


def test_bad_rows_are_named_by_line_and_left_out() -> None:
    rows = _csv(
        "code,name\n"
        "000.00.00.H26,Hà Nội\n"
        "01.02.G22,Shortened\n"
        "000.00.01.H26,\n"
        "000.00.00.H26,Hà Nội again\n"
        "000.00.02.H26,  Sở   Tư pháp  \n"
    )
    assert rows == [
        Entry("000.00.00.H26", "Hà Nội", ""),
        RowProblem(3, "'01.02.G22' is not an agency code like 000.00.00.G22"),
        RowProblem(4, "000.00.01.H26 has no name"),
        RowProblem(5, "000.00.00.H26 is listed twice; the first row is kept"),
        Entry("000.00.02.H26", "Sở Tư pháp", "000.00.00.H26"),
    ]


def test_a_csv_without_the_columns_is_refused_as_a_whole() -> None:
    with pytest.raises(ValueError, match="code,name"):
        _csv("ma,ten\n000.00.00.H26,Hà Nội\n")


def test_json_lines_and_a_byte_order_mark_are_read() -> None:
    data = (
        '\ufeff{"code": "000.00.00.G12", "name": "Bộ Tài chính"}\n'
        "\n"
        "not json\n"
        '{"code": "000.00.18.G12", "name": "Tổng cục Thuế"}\n'
    ).encode()
    rows = list(read_entries(open_text(data), json_lines=True))
    assert rows == [
        Entry("000.00.00.G12", "Bộ Tài chính", ""),
        RowProblem(3, "'' is not an agency code like 000.00.00.G22"),
        Entry("000.00.18.G12", "Tổng cục Thuế", "000.00.00.G12"),
    ]


def test_the_directory_answers_look_ups_and_children() -> None:
    directory = NationalDirectory(
        [
            Entry("000.00.00.G12", "Bộ Tài chính", ""),
            Entry("000.00.18.G12", "Tổng cục Thuế", "000.00.00.G12"),
            Entry("000.00.19.G12", "Tổng cục Hải quan", "000.00.00.G12"),
        ]
    )
    assert len(directory) == 3 and "000.00.18.G12" in directory
    assert "000.00.20.G12" not in directory
    assert [e.code for e in directory.children("000.00.00.G12")] == [
        "000.00.18.G12",
        "000.00.19.G12",
    ]
    assert [e.code for e in directory.children("")] == ["000.00.00.G12"]
    assert directory.children("000.00.18.G12") == []
