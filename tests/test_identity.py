"""Keys that belong to users, on the real database: parsing, issuing, hashing, audiences, revocation,
the answer cache, and the bearer header."""

from __future__ import annotations

import hashlib
from types import SimpleNamespace

import pytest
from pydantic import SecretStr

from sage_platform.db import Database
from sage_platform.identity import (
    DEFAULT_USER,
    LOCAL,
    Identity,
    KeyRing,
    bearer_secret,
    check_user_name,
    issue_key,
    list_keys,
    parse_key_list,
    revoke_key,
)


def _sha(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def test_a_key_list_names_users_and_a_bare_key_is_the_default_user() -> None:
    parsed = parse_key_list(" alice = k-a , k-bare,,bob=k-b ", admin_digests=frozenset({_sha("k-b")}))
    assert parsed == {
        _sha("k-a"): Identity("alice"),
        _sha("k-bare"): Identity(DEFAULT_USER),
        _sha("k-b"): Identity("bob", admin=True),
    }
    with pytest.raises(ValueError, match="an entry for user 'carol' has an empty key"):
        parse_key_list("carol=")
    with pytest.raises(ValueError, match=r"user name 'bad user' must be 1-128 letters"):
        parse_key_list("bad user=k")


@pytest.mark.parametrize("name", ["", "a" * 129, "x/y", "ä"])
def test_user_names_are_checked(name: str) -> None:
    with pytest.raises(ValueError, match="must be 1-128 letters"):
        check_user_name(name)


def test_user_names_at_the_limits_pass() -> None:
    assert check_user_name("a" * 128) == "a" * 128 and check_user_name("a.b@c_d-e") == "a.b@c_d-e"


def test_ownership() -> None:
    assert Identity("alice").owns("alice") and not Identity("alice").owns("bob") and not Identity("alice").owns(None)
    assert Identity("root", admin=True).owns("bob") and LOCAL.admin and LOCAL.user_id == DEFAULT_USER


@pytest.mark.parametrize(
    ("header", "secret"),
    [("Bearer abc", "abc"), ("bearer  abc ", "abc"), ("BEARER abc", "abc"), ("Basic abc", None), ("Bearer ", None),
     ("", None), (None, None), ("abc", None)],
)  # fmt: skip
def test_bearer_header(header: str | None, secret: str | None) -> None:
    assert bearer_secret(header) == secret


def _ring(db: Database | None, audience: str = "api", **settings: str) -> KeyRing:
    values = {"api_keys": None, "mcp_tokens": None, "admin_keys": None, "key_cache_seconds": 0.0}
    values.update({k: SecretStr(v) for k, v in settings.items()})
    return KeyRing.from_settings(SimpleNamespace(**values), db, audience=audience)  # type: ignore[arg-type]


def test_environment_keys_per_audience_and_admin_keys() -> None:
    api = _ring(None, api_keys="alice=k-api", mcp_tokens="k-mcp", admin_keys="k-root")
    mcp = _ring(None, "mcp", api_keys="alice=k-api", mcp_tokens="k-mcp", admin_keys="k-root")
    assert api.identify("k-api") == Identity("alice") and api.identify("k-mcp") is None
    assert mcp.identify("k-mcp") == Identity(DEFAULT_USER) and mcp.identify("k-api") is None
    assert api.identify("k-root") == Identity("admin", admin=True) == mcp.identify("k-root")
    assert api.configured() and not _ring(None).configured()
    assert api.identify("k-api ") is None and api.identify("K-API") is None


def test_stored_keys_are_hashed_scoped_to_their_audience_and_revocable(db: Database) -> None:
    ring, mcp = _ring(db), _ring(db, "mcp")
    assert not ring.configured()
    issued = issue_key(db, "bob", audience="api", admin=True)
    assert issued.secret.startswith("sage_") and issued.key_id.startswith("k_")
    with db.connect() as conn:
        assert conn.execute("SELECT key_hash FROM api_keys").fetchall() == [(_sha(issued.secret),)]
    assert ring.configured() and not mcp.configured()
    assert ring.identify(issued.secret) == Identity("bob", admin=True, key_id=issued.key_id)
    assert mcp.identify(issued.secret) is None and ring.identify(issued.secret + "x") is None
    [listed] = list_keys(db, audience="api")
    assert listed["user_id"] == "bob" and listed["last_used"] is not None and "key_hash" not in listed
    assert list_keys(db, audience="mcp") == [] and len(list_keys(db)) == 1
    assert revoke_key(db, issued.key_id) and not revoke_key(db, issued.key_id) and not revoke_key(db, "k_none")
    assert ring.identify(issued.secret) is None  # cache_seconds 0: the revocation is seen at once
    with pytest.raises(ValueError, match="user name"):
        issue_key(db, "no spaces")


def test_answers_are_cached_for_the_cache_time_and_the_cache_is_bounded(db: Database) -> None:
    issued = issue_key(db, "carol")
    ring = KeyRing({}, db, audience="api", cache_seconds=3600, cache_size=3)
    assert ring.identify(issued.secret) == Identity("carol", key_id=issued.key_id)
    revoke_key(db, issued.key_id)
    assert ring.identify(issued.secret) == Identity("carol", key_id=issued.key_id)  # still cached
    for i in range(5):
        assert ring.identify(f"wrong-{i}") is None
    assert ring.cached_entries() == 3  # the oldest answers went first
    assert ring.identify(issued.secret) is None  # evicted, so looked up again: revoked


def test_a_key_may_contain_equals_signs_and_admin_keys_may_be_listed_users() -> None:
    ring = _ring(None, api_keys="alice=abc==,bob=k-b", admin_keys="k-b, k-root ,k-root2")
    assert ring.identify("abc==") == Identity("alice")  # base64 padding stays part of the key
    assert ring.identify("k-b") == Identity("bob", admin=True)  # a listed user whose key is an admin key
    assert ring.identify("k-root") == ring.identify("k-root2") == Identity("admin", admin=True)


def test_an_issued_key_says_what_it_is(db: Database) -> None:
    issued = issue_key(db, "dana", audience="mcp", admin=False)
    assert (issued.user_id, issued.admin, issued.audience) == ("dana", False, "mcp")
    assert len(issued.key_id) == len("k_") + 12 and len(issued.secret) >= len("sage_") + 40
    admin = issue_key(db, "erin", admin=True)
    assert (admin.admin, admin.audience) == (True, "api")


def test_whether_any_key_is_configured_is_re_read_after_the_cache_time(db: Database) -> None:
    cached = KeyRing({}, db, audience="api", cache_seconds=3600)
    fresh = KeyRing({}, db, audience="api", cache_seconds=0)
    assert not cached.configured() and not fresh.configured()
    issue_key(db, "fay")
    assert fresh.configured() and not cached.configured()  # the cached answer holds for an hour
