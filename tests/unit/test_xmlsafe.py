"""Hardened parsing: what reaches libxml2 at all, and what it is allowed to do."""

from __future__ import annotations

import pytest

from hub.errors import ForbiddenXML, MalformedXML
from hub.xmlsafe import declares_doctype, parse

DEV_ZERO_DTD = '<!DOCTYPE x [<!ENTITY % p SYSTEM "file:///dev/zero"> %p;]>'


@pytest.mark.parametrize(
    "data",
    [
        f'<?xml version="1.0"?>{DEV_ZERO_DTD}<x/>'.encode(),
        f"\ufeff<?xml version='1.0'?><!-- c --><?pi x?>\n  {DEV_ZERO_DTD}<x/>".encode(),
        f'<?xml version="1.0" encoding="UTF-16"?>{DEV_ZERO_DTD}<x/>'.encode("utf-16"),
        b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>',
    ],
    ids=["utf-8", "after-bom-comment-pi", "utf-16", "no-declaration"],
)
def test_a_doctype_is_refused_before_libxml2_reads_it(data: bytes) -> None:
    # /dev/zero would hang the parser for ever if libxml2 were allowed to open it.
    with pytest.raises(ForbiddenXML):
        parse(data)


@pytest.mark.parametrize("before", [500, 505, 508, 511, 512, 520, 1024, 5000, 60_000])
@pytest.mark.parametrize("filler", ["space", "comment"])
def test_a_doctype_far_into_the_prolog_is_refused(before: int, filler: str) -> None:
    # The prolog is read in a short window first: a DOCTYPE just past it, or cut in two by its
    # end, must still be seen.
    declaration = '<?xml version="1.0"?>'
    pad = before - len(declaration)
    gap = " " * pad if filler == "space" else f"<!--{'c' * (pad - 7)}-->"
    data = f"{declaration}{gap}<!DOCTYPE x><x/>".encode()
    assert data.index(b"<!DOCTYPE") == before
    assert declares_doctype(data)  # seen before libxml2 reads a byte
    assert not declares_doctype(data.replace(b"<!DOCTYPE x>", b""))


@pytest.mark.parametrize("before", [480, 500, 520, 5000])
def test_an_encoding_declaration_cut_by_the_short_window_is_still_read(before: int) -> None:
    data = (" " * before + f'<?xml version="1.0" encoding="cp037"?>{DEV_ZERO_DTD}<x/>').encode()
    with pytest.raises(MalformedXML) as caught:
        parse(data)
    assert "'cp037'" in caught.value.detail


def test_stray_bytes_far_before_the_declaration_are_counted() -> None:
    data = b"x" * 3000 + b'<?xml version="1.0"?><x/>'
    with pytest.raises(MalformedXML) as caught:
        parse(data)
    assert "3000 stray byte(s) before the XML declaration" in caught.value.detail


@pytest.mark.parametrize(
    ("data", "says"),
    [
        # libxml2 would switch to each of these by itself and read a prolog we could not check.
        (
            f'<?xml version="1.0" encoding="cp037"?>{DEV_ZERO_DTD}<x/>'.encode("cp037"),
            "start with '<'",
        ),
        (f'<?xml version="1.0"?>{DEV_ZERO_DTD}<x/>'.encode("utf-32"), "UTF-32"),
        (b'<?xml version="1.0"?><x/>'.decode().encode("utf-16-le"), "NUL bytes"),
        (b'<?xml version="1.0" encoding="IBM037"?><x/>', "'IBM037'"),
        (b'<?xml version="1.0" encoding="ISO-8859-1"?><x/>', "'ISO-8859-1'"),
    ],
    ids=["ebcdic", "utf-32", "utf-16-without-bom", "declared-ebcdic", "declared-latin-1"],
)
def test_only_utf8_and_marked_utf16_reach_the_parser(data: bytes, says: str) -> None:
    with pytest.raises(MalformedXML) as caught:
        parse(data)
    assert says in caught.value.detail


def test_doctype_quoted_in_the_body_is_not_a_doctype() -> None:
    tree = parse(b'<?xml version="1.0"?><!-- <!DOCTYPE y> --><x><![CDATA[<!DOCTYPE z>]]></x>')
    assert tree.getroot().text == "<!DOCTYPE z>"


def test_utf8_with_bom_and_utf16_with_bom_are_read() -> None:
    assert (
        parse('\ufeff<?xml version="1.0" encoding="utf-8"?><x>Hà Nội</x>'.encode()).getroot().text
        == "Hà Nội"
    )
    assert (
        parse('<?xml version="1.0" encoding="UTF-16"?><x>Hà Nội</x>'.encode("utf-16"))
        .getroot()
        .text
        == "Hà Nội"
    )


@pytest.mark.parametrize(
    ("data", "line", "column", "says"),
    [
        (b'1212<?xml version="1.0"?><x/>', 1, 1, "4 stray byte(s) before the XML declaration"),
        (b"  hello", 1, 3, "does not start with '<'"),
        (b"<x><y></x>", 1, 11, "mismatch"),  # libxml2 points at the end of the offending tag
    ],
)
def test_malformed_input_says_where(data: bytes, line: int, column: int, says: str) -> None:
    with pytest.raises(MalformedXML) as caught:
        parse(data)
    problem = caught.value.problems[0]
    assert (problem.line, problem.column) == (line, column)
    assert says in problem.message
    assert ", line" not in problem.message  # the position is given once, in the fields


def test_billion_laughs_never_expands() -> None:
    lol = (
        b'<?xml version="1.0"?>'
        b'<!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]><l>&b;</l>'
    )
    with pytest.raises(ForbiddenXML):
        parse(lol)


@pytest.mark.parametrize(
    "prolog",
    [
        '<?xml version="1.0" encoding="UTF-8"?>\n',
        "<?xml version='1.0' encoding='utf-8'?>",
        '<?xml version="1.0" encoding="UTF-8"?>\r\n\t ',
    ],
)
def test_the_usual_prolog_is_decided_at_once_and_a_doctype_after_it_is_not_missed(
    prolog: str,
) -> None:
    assert not declares_doctype(f"{prolog}<edXML/>".encode())
    assert declares_doctype(f"{prolog}<!DOCTYPE x><edXML/>".encode())
    assert declares_doctype(f"{prolog}<!-- c --><!DOCTYPE x><edXML/>".encode())
    assert declares_doctype(f"{prolog}<?pi x?><!DOCTYPE x><edXML/>".encode())
    with pytest.raises(MalformedXML):  # the usual prolog in another encoding is no shortcut
        declares_doctype(f"{prolog}<edXML/>".replace("8", "16").encode())
