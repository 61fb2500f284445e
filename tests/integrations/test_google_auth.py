"""Google Calendar, credentials (integrations/google/auth.py, and the sign-in of client.py):
the stored OAuth sign-in, refreshing it, credential files that cannot be used, and the
`friendtor google-auth` command's errors."""

from __future__ import annotations

import json
import logging
import shutil
import stat
from datetime import timedelta

import pytest
from google.oauth2.credentials import Credentials
from googleapiclient.http import HttpMockSequence

from integrations.google import SCOPE, Connection, google_busy, save_token
from scheduler.cli.main import main
from scheduler.core.config import Google
from scheduler.core.errors import SendError
from scheduler.app.store import atomic_write
from google_api import (ACCESS, REFRESH, ROOT, SERVICE_TOML, START, calls, freebusy_answer, logged, signed_in,
                        window_body)


def test_save_token_writes_0600_atomically_without_the_client_secret(tmp_path):
    """The stored sign-in is mode 0600 whatever was there before, and holds the refresh token, not the client secret."""
    path = tmp_path / "var" / "google-token.json"
    path.parent.mkdir()
    path.write_text("old")
    path.chmod(0o644)
    creds = Credentials(token=None, refresh_token=REFRESH, token_uri="https://oauth2.googleapis.com/token",
                        client_id="123.apps.googleusercontent.com", client_secret="client-SECRET-value",
                        scopes=[SCOPE])
    save_token(creds, path, atomic_write)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    stored = json.loads(path.read_text())
    assert stored["refresh_token"] == REFRESH and "client_secret" not in stored
    assert [p.name for p in path.parent.iterdir()] == ["google-token.json"]  # no temp file left


def test_expired_sign_in_is_refreshed_stored_0600_and_never_logged(tmp_path, caplog, capsys):
    """An expired access token is refreshed, stored (0600), used as the Bearer token, and appears in no log line."""
    caplog.set_level(logging.DEBUG)
    google = signed_in(tmp_path, expired=True)
    token_answer = ({"status": "200", "content-type": "application/json"},
                    json.dumps({"access_token": ACCESS, "expires_in": 3599, "token_type": "Bearer", "scope": SCOPE}))
    end = START + timedelta(days=1)
    http = HttpMockSequence([token_answer, freebusy_answer(window_body(["a@x.example"], START, end))])
    connect = Connection(google, tmp_path, atomic_write, http=http)
    result = google_busy(connect(), ["a@x.example"], START, end)
    assert result["a@x.example"].unknown is None
    (call,) = calls(http)
    assert call.headers["authorization"] == f"Bearer {ACCESS}"
    path = tmp_path / "var" / "google-token.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    stored = json.loads(path.read_text())
    assert stored["token"] == ACCESS and stored["refresh_token"] == REFRESH
    text = logged(caplog)
    assert "Google sign-in refreshed" in text and "google-token.json" in text
    out = capsys.readouterr()
    for secret in (ACCESS, REFRESH, "client-SECRET-value"):
        assert secret not in text and secret not in out.out + out.err


def test_a_valid_sign_in_is_used_without_refreshing(tmp_path):
    """A stored access token that has not expired goes straight to the API."""
    google = signed_in(tmp_path, expired=False)
    end = START + timedelta(days=1)
    http = HttpMockSequence([freebusy_answer(window_body(["a@x.example"], START, end))])
    google_busy(Connection(google, tmp_path, atomic_write, http=http)(), ["a@x.example"], START, end)
    assert calls(http)[0].headers["authorization"] == "Bearer ya29.old-ACCESS-token"


def test_a_revoked_sign_in_is_permanent_and_names_the_command(tmp_path, caplog):
    """Google refusing the refresh token (invalid_grant) says to run google-auth again; no token in the text."""
    caplog.set_level(logging.DEBUG)
    google = signed_in(tmp_path, expired=True)
    refused = ({"status": "400", "content-type": "application/json"},
               json.dumps({"error": "invalid_grant", "error_description": "Token has been expired or revoked."}))
    with pytest.raises(SendError) as caught:
        Connection(google, tmp_path, atomic_write, http=HttpMockSequence([refused]))()
    text = str(caught.value)
    assert not caught.value.transient and "invalid_grant" in text
    assert f"run `friendtor google-auth --config {tmp_path}`" in text
    assert REFRESH not in text and REFRESH not in logged(caplog)


def test_signing_in_again_is_picked_up_without_a_restart(tmp_path):
    """After a refused sign-in, a new token file from `google-auth` is read at the next call."""
    google = signed_in(tmp_path, expired=True)
    refused = ({"status": "400", "content-type": "application/json"}, json.dumps({"error": "invalid_grant"}))
    end = START + timedelta(days=1)
    http = HttpMockSequence([refused, freebusy_answer(window_body(["a@x.example"], START, end))])
    connect = Connection(google, tmp_path, atomic_write, http=http)
    with pytest.raises(SendError):
        connect()
    signed_in(tmp_path, expired=False)   # what `friendtor google-auth` leaves behind
    assert google_busy(connect(), ["a@x.example"], START, end)["a@x.example"].unknown is None


@pytest.mark.parametrize("setup, words", [
    ("no-client", "cannot read the Google OAuth client file"),
    ("bad-client", "not a Google OAuth client file"),
    ("no-token", "no Google sign-in stored yet; run `friendtor google-auth --config"),
    ("bad-token", "the stored Google sign-in is damaged"),
    ("other-client", "made with another OAuth client"),
])
def test_credential_files_that_cannot_be_used_are_one_line_with_the_fix(tmp_path, setup, words):
    """Each unusable credentials file gives one permanent line naming the file and what to do."""
    google = signed_in(tmp_path, expired=False)
    token = tmp_path / "var" / "google-token.json"
    if setup == "no-client":
        (tmp_path / "client.json").unlink()
    elif setup == "bad-client":
        (tmp_path / "client.json").write_text("{}")
    elif setup == "no-token":
        token.unlink()
    elif setup == "bad-token":
        token.write_text("{not json")
    elif setup == "other-client":
        token.write_text(json.dumps({**json.loads(token.read_text()), "client_id": "999.apps.googleusercontent.com"}))
    with pytest.raises(SendError) as caught:
        Connection(google, tmp_path, atomic_write, http=HttpMockSequence([]))()
    assert words in str(caught.value) and "\n" not in str(caught.value) and not caught.value.transient


def test_a_bad_service_account_key_is_one_line(tmp_path):
    """A service-account key file that is not a key names the file and where to get one."""
    (tmp_path / "key.json").write_text(json.dumps({"type": "service_account"}))
    google = Google(auth="service-account", credentials="key.json", subject="ops@uni.example")
    with pytest.raises(SendError) as caught:
        Connection(google, tmp_path, atomic_write, http=HttpMockSequence([]))()
    assert "key.json: not a service account key" in str(caught.value)

@pytest.mark.parametrize("auth, extra, words", [
    ("service-account", 'subject = "ops@uni.example"', "needs no sign-in"),
    ("oauth", "", "cannot read the Google OAuth client file"),
])
def test_google_auth_command_errors_are_one_line(tmp_path, capsys, auth, extra, words):
    """`friendtor google-auth` refuses a service-account config and a missing client file in one line, exit 2."""
    folder = tmp_path / "cfg"
    shutil.copytree(ROOT / "config" / "example", folder, ignore=shutil.ignore_patterns("var"))
    (folder / "service.toml").write_text(SERVICE_TOML.format(publish='["email"]', auth=auth, extra=extra))
    assert main(["google-auth", "--config", str(folder)]) == 2
    err = capsys.readouterr().err.strip()
    assert words in err and len(err.splitlines()) == 1
