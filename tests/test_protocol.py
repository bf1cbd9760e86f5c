import json

import pytest

from rooms.protocol import ProtocolError, TokenBucket, parse_client_frame


def test_valid_move_parses():
    assert parse_client_frame('{"type":"move","x":3,"y":4,"seq":1}') == ("move", {"x": 3, "y": 4, "seq": 1})


@pytest.mark.parametrize(
    ("text", "code", "fragment"),
    [
        ("not json", "bad_json", "not valid JSON"),
        ("[1,2]", "bad_frame", "JSON object"),
        ('{"type":"fly"}', "unknown_type", "unknown frame type"),
        ('{"type":"move","x":1,"y":2}', "bad_field", "missing field 'seq'"),
        ('{"type":"move","x":"1","y":2,"seq":1}', "bad_field", "'x' must be int"),
        ('{"type":"move","x":true,"y":2,"seq":1}', "bad_field", "'x' must be int"),
        ('{"type":"move","x":-1,"y":2,"seq":1}', "bad_field", "at least 0"),
        ('{"type":"move","x":1,"y":2,"seq":1,"admin":true}', "bad_field", "unexpected field"),
        ('{"type":"status.set","status":"asleep"}', "bad_field", "must be one of"),
        ("[" * 100000 + "]" * 100000, "bad_json", "nested too deeply"),
        (None, "bad_frame", "binary"),
    ],
)
def test_bad_frames_say_what_is_wrong(text, code, fragment):
    with pytest.raises(ProtocolError) as info:
        parse_client_frame(text)
    assert info.value.code == code
    assert fragment in info.value.message
    assert json.dumps(info.value.frame())  # the error frame is JSON-safe


def test_token_bucket_allows_burst_then_rate():
    bucket = TokenBucket(rate=10, burst=5, now=0.0)
    assert all(bucket.take(0.0) for _ in range(5))
    assert not bucket.take(0.0)
    assert bucket.take(0.1)  # one token back after 1/rate seconds
    assert not bucket.take(0.1)
