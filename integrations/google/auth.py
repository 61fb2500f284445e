"""Google credentials: reading them, storing the OAuth sign-in, and the one-time consent of
`friendtor google-auth`.

Two kinds of credentials, chosen by `[google] auth` in service.toml (docs/google.md):
- "oauth": an installed-app OAuth client; `friendtor google-auth` asks a person to consent
  once and stores the refresh token in `[google] token` (0600). Every later run refreshes
  the short-lived access token from it and rewrites the file atomically, still 0600.
- "service-account": a Workspace service account key with domain-wide delegation, acting
  as `[google] subject`. Nothing is stored: the key signs a fresh token when needed.

Tokens never reach a log line or an error message: errors name files and fixes, not values.
The token file is written through the WriteFile port (the app's atomic write, handed in by
the CLI): this gateway keeps no file-writing code of its own.

A credential file that is missing or wrong while the service runs is a permanent SendError
(the outbox reports it once, and it holds publishing back); at `google-auth` time, when a
person is at the terminal, it is a SetupError.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from scheduler.core.config import Config, Google
from scheduler.core.errors import FriendtorError, SendError, SetupError
from scheduler.core.ports import WriteFile

from ..secrets import scrub

# One scope for both jobs: freebusy alone would do with calendar.readonly, but publishing
# writes events, and asking for two scopes would mean two consents.
SCOPE = "https://www.googleapis.com/auth/calendar"


def google_settings(config: Config) -> Google:
    """The `[google]` table, or a SetupError saying to add one."""
    google = config.service.google
    if google is None:
        raise SetupError(f"{config.folder / 'service.toml'}: there is no [google] table; "
                         "add one (see docs/google.md)")
    return google


def _sign_in_again(folder: Path | str) -> str:
    return f"run `friendtor google-auth --config {folder}` to sign in again"


def auth_fix(google: Google, folder: Path | str) -> str:
    """What an operator does when Google refuses the credentials."""
    if google.auth == "oauth":
        return _sign_in_again(folder)
    return (f"check the service account key ({google.credentials}) and that domain-wide delegation in the "
            f"Workspace admin console grants its client id the scope {SCOPE}, acting as {google.subject}")


def _permanent(message: str) -> SendError:
    return SendError(message, transient=False)


def _client_secrets(path: Path, problem: Callable[[str], FriendtorError] = _permanent) -> tuple[str, str]:
    """client_id and client_secret from an OAuth client JSON ("Desktop app" download).
    `problem` builds the error: a SendError while the service runs, a SetupError at sign-in."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        client = data.get("installed") or data.get("web")
        return client["client_id"], client["client_secret"]
    except OSError as exc:
        raise problem(f"{path}: cannot read the Google OAuth client file ({exc.strerror or exc}); "
                         "download it from the Google Cloud console, APIs & Services > Credentials "
                         "(docs/google.md)") from None
    except (ValueError, TypeError, KeyError, AttributeError):
        raise problem(f"{path}: not a Google OAuth client file (expected JSON with an \"installed\" "
                         "client); create an OAuth client of type \"Desktop app\" and download its JSON "
                         "(docs/google.md)") from None


def load_oauth_credentials(google: Google, folder: Path):
    """The stored sign-in as Credentials: the refresh token from `token`, the client from `credentials`."""
    from google.oauth2.credentials import Credentials

    secrets = folder / Path(google.credentials).expanduser()
    token = folder / Path(google.token).expanduser()
    client_id, client_secret = _client_secrets(secrets)
    try:
        info = json.loads(token.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise _permanent(f"{token}: no Google sign-in stored yet; run `friendtor google-auth --config "
                         f"{folder}` once (docs/google.md)") from None
    except OSError as exc:
        raise _permanent(f"{token}: cannot read the stored Google sign-in ({exc.strerror or exc}); "
                         f"check its permissions, or {_sign_in_again(folder)}") from None
    except ValueError:
        raise _permanent(f"{token}: the stored Google sign-in is damaged; {_sign_in_again(folder)}") from None
    if not isinstance(info, dict) or not info.get("refresh_token"):
        raise _permanent(f"{token}: the stored Google sign-in has no refresh token; {_sign_in_again(folder)}")
    if info.get("client_id", client_id) != client_id:
        raise _permanent(f"{token}: the stored sign-in was made with another OAuth client than {secrets}; "
                         f"{_sign_in_again(folder)}")
    try:
        return Credentials.from_authorized_user_info({**info, "client_id": client_id,
                                                      "client_secret": client_secret})
    except ValueError:
        raise _permanent(f"{token}: the stored Google sign-in is damaged; {_sign_in_again(folder)}") from None


def load_service_account_credentials(google: Google, folder: Path):
    from google.oauth2 import service_account

    key = folder / Path(google.credentials).expanduser()
    try:
        creds = service_account.Credentials.from_service_account_file(str(key), scopes=[SCOPE])
    except OSError as exc:
        raise _permanent(f"{key}: cannot read the service account key ({exc.strerror or exc}); "
                         "create a JSON key for the service account (docs/google.md)") from None
    except (ValueError, KeyError, TypeError):
        raise _permanent(f"{key}: not a service account key (expected the JSON key file from the Cloud "
                         "console, IAM > Service accounts > Keys); docs/google.md") from None
    return creds.with_subject(google.subject)


def save_token(credentials, path: Path, write_file: WriteFile) -> None:
    """Store an OAuth sign-in: 0600, written atomically (`write_file`), without the client secret.

    The client secret stays in the client file alone (one place to rotate it); the token file
    holds the refresh token, which is as a password for the calendar: never print it.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_file(path, credentials.to_json(strip=["client_secret"]).encode("utf-8"), 0o600)


def authorize(config: Config, write_file: WriteFile, *, port: int = 0, open_browser: bool = True,
              timeout_seconds: int = 600) -> Path:
    """Ask a person to consent in a browser; store the refresh token in `[google] token` (0600).

    Google's installed-app flow redirects the browser to a small web server on this machine
    (http://localhost:PORT/). On a server without a browser, open the printed URL on your own
    computer with `ssh -L PORT:localhost:PORT server` forwarding that port (docs/google.md).
    """
    google = google_settings(config)
    if google.auth != "oauth":
        raise SetupError(f"{config.folder / 'service.toml'}: [google] auth = \"{google.auth}\" needs no "
                             "sign-in: the service account key and domain-wide delegation are the credentials "
                             "(docs/google.md); google-auth is for auth = \"oauth\"")
    secrets = config.path(google.credentials)
    _client_secrets(secrets, SetupError)  # a missing or wrong file is one clear line before any browser opens
    from google_auth_oauthlib.flow import InstalledAppFlow

    if open_browser:
        import webbrowser

        try:
            webbrowser.get()
        except webbrowser.Error:  # a server without a desktop: the printed URL is the way
            open_browser = False
    flow = InstalledAppFlow.from_client_secrets_file(str(secrets), scopes=[SCOPE])
    try:
        creds = flow.run_local_server(
            host="localhost", port=port, open_browser=open_browser, timeout_seconds=timeout_seconds,
            authorization_prompt_message="Open this URL in a browser and allow access to Google Calendar:\n{url}\n",
            success_message="friendtor may now use your Google Calendar. You can close this window.",
            # offline + consent: Google returns a refresh token even to an account that consented before.
            access_type="offline", prompt="consent")
    except OSError as exc:
        raise SetupError(f"cannot listen on localhost:{port} for Google's answer ({exc.strerror or exc}); "
                             "choose another --port") from None
    except Exception as exc:  # oauthlib's errors: access denied, state mismatch, time-out
        # scrubbed: oauthlib may quote the redirect URL, whose query holds the one-time code.
        raise SetupError(f"Google sign-in did not complete ({type(exc).__name__}: {scrub(str(exc))}); "
                             "run the command again and allow access") from None
    if not creds.refresh_token:
        raise SetupError("Google returned no refresh token; remove friendtor's access at "
                             "myaccount.google.com > Security > Third-party access, then run the command again")
    path = config.path(google.token)
    try:
        save_token(creds, path, write_file)
    except OSError as exc:
        raise SetupError(f"{path}: cannot store the Google sign-in ({exc.strerror or exc}); "
                             "check that the folder is writable") from None
    return path
