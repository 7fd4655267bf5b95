"""One redaction rule: known secrets in any common encoding, and every URL's userinfo."""

from __future__ import annotations

import pytest

from features.redact import (
    has_userinfo,
    redact,
    redact_urls,
    refuse_url_credentials,
    strip_userinfo,
    urls_with_userinfo,
)


def test_redact_masks_known_secrets_in_their_encodings_and_url_userinfo() -> None:
    key = 'sk-a/b"c'
    text = f'Bearer {key} sk-a%2Fb%22c {{"k": "sk-a/b\\"c"}} http://u:p@w@host:1/x?y=z@q'
    assert redact(text, [key, None, ""]) == 'Bearer *** *** {"k": "***"} http://***@host:1/x?y=z@q'
    assert redact("nothing to hide", []) == "nothing to hide"


def test_redact_urls_leaves_paths_and_plain_mail_addresses_alone() -> None:
    assert redact_urls("see https://h/a@b and me@example.org") == "see https://h/a@b and me@example.org"
    assert redact_urls("(http://x:y@h/v1), ws://t@h") == "(http://***@h/v1), ws://***@h"


@pytest.mark.parametrize(
    ("url", "stripped"),
    [
        ("http://me:pw@h:8000/v1", "http://h:8000/v1"),
        ("https://token@h/v1?q=1", "https://h/v1?q=1"),
        ("http://h/v1", "http://h/v1"),
        ("http://u:p@[::1]:80/", "http://[::1]:80/"),
    ],
)
def test_strip_userinfo(url: str, stripped: str) -> None:
    assert strip_userinfo(url) == stripped
    assert has_userinfo(url) == (url != stripped)


def test_refuse_url_credentials_names_the_place_and_hides_the_password() -> None:
    settings = {"base_url": "http://u:hunter2@h/v1", "nested": {"urls": ["https://h/ok"]}, "n": 3}
    assert urls_with_userinfo(settings) == ["http://***@h/v1"]
    with pytest.raises(ValueError, match=r"settings of summarize: .*http://\*\*\*@h/v1") as refused:
        refuse_url_credentials(settings, where="settings of summarize")
    assert "hunter2" not in str(refused.value)
    refuse_url_credentials({"lake": "abfss://container@account.dfs.core.windows.net/lake"}, where="x")  # not HTTP
