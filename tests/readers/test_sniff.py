"""The one encoding sniffer (readers/sniff.py): text written by Windows tools in UTF-8 or
UTF-16, with or without a byte-order mark, reads back the same; any bytes read as something."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from exhunt.readers.sniff import decode_head, sniff_encoding, sniff_event_export

ASCII_START = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=2,
                      max_size=4)
ANY_TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\ufeff"),
                   max_size=200)


@given(ASCII_START, ANY_TEXT, st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "utf-16-le",
                                               "utf-16-be"]))
def test_text_in_any_windows_encoding_reads_back(start: str, rest: str, encoding: str) -> None:
    text = start + rest
    assert decode_head(text.encode(encoding)) == text


@given(st.binary(max_size=600))
def test_any_bytes_give_an_encoding_and_text(head: bytes) -> None:
    encoding, bom = sniff_encoding(head)
    assert encoding in ("utf-8", "utf-16-le", "utf-16-be") and bom in (0, 2, 3)
    assert isinstance(decode_head(head), str)
    assert sniff_event_export(head) in (None, "evtx", "xml", "json")


def test_utf16_big_endian_without_a_mark_is_seen() -> None:
    assert sniff_encoding("#Fields: date".encode("utf-16-be")) == ("utf-16-be", 0)
    assert sniff_event_export("<Events>".encode("utf-16-be")) == "xml"
