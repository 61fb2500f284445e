"""CalDAV (RFC 4791): members' busy time (`busy`), and meetings published into a calendar
collection (`publish`), over one client per server (`client`).

HTTP is the standard library's, through the shared bounded helper (integrations/http.py),
one connection per request: a dozen requests a tick need no session, and it keeps the time
and size limits exact. (The `caldav` package would add a dependency tree for three verbs and
two REPORT bodies.)
"""

from .busy import caldav_busy
from .client import Auth, DavClient, caldav_auth, collection_url, display, same_host
from .publish import CalDavPublisher, resource_name, stored_calendar

__all__ = ["Auth", "CalDavPublisher", "DavClient", "caldav_auth", "caldav_busy", "collection_url", "display",
           "resource_name", "same_host", "stored_calendar"]
