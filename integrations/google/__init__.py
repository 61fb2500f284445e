"""Google Calendar: members' busy time (`freebusy`) and publishing meetings (`publish`),
through one signed-in, retried API client (`client`) with the credentials of `auth`.

The modules here import Google's libraries only inside the functions that use them, so a
service without `[google]` never loads the discovery-based client (a test checks this).
"""

from .auth import SCOPE, authorize, google_settings, load_oauth_credentials, save_token
from .client import Connection, calendar_service, classify, connection, execute
from .freebusy import calendar_id, google_busy, members_availability
from .publish import GooglePublisher, event_body

__all__ = ["SCOPE", "Connection", "GooglePublisher", "authorize", "calendar_id", "calendar_service", "classify",
           "connection", "event_body", "execute", "google_busy", "google_settings", "load_oauth_credentials",
           "members_availability", "save_token"]
