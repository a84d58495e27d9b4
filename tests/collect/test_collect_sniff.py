"""Recognising event-log exports from their first bytes."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from exhunt.collect.locate import SNIFF_BYTES, is_event_export

WEVTUTIL = (
    "<Events><Event xmlns='http://schemas.microsoft.com/win/2004/08/events/event'>"
    "<System><Provider Name='MSExchange CmdletLogs'/><EventID>1</EventID></System></Event>"
)
JSON = '[{"Message": "Cmdlet succeeded.", "Id": 1, "ProviderName": "MSExchange CmdletLogs",' \
       ' "LogName": "MSExchange Management", "TimeCreated": "2021-03-03T00:00:00Z"}]'


def test_wevtutil_xml_in_any_usual_encoding_is_recognised() -> None:
    assert is_event_export(WEVTUTIL.encode())
    assert is_event_export(b"\xef\xbb\xbf" + WEVTUTIL.encode())
    assert is_event_export(WEVTUTIL.encode("utf-16"))  # with BOM
    assert is_event_export(WEVTUTIL.encode("utf-16-le"))  # without


def test_get_winevent_json_is_recognised_even_when_the_message_fills_the_head() -> None:
    assert is_event_export(JSON.encode())
    assert is_event_export(JSON.encode("utf-16"))
    long = ('[\r\n  {\r\n    "Message":  "Cmdlet succeeded. ' + "x\\\"y " * 2000).encode()
    assert is_event_export(long[:SNIFF_BYTES])


def test_look_alikes_are_not_exports() -> None:
    assert not is_event_export(b'{"Message": "hello", "Level": 3}')
    assert not is_event_export(b"<Events><Item>schemas.microsoft.com/win/2004/08/events/event")
    assert not is_event_export(b"ProviderName LogName TimeCreated as plain text")
    assert not is_event_export(b"")


@given(st.binary(max_size=SNIFF_BYTES))
def test_any_bytes_are_judged_without_error(head: bytes) -> None:
    assert is_event_export(head) in (True, False)
