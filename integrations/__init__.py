"""Gateways to the outside world, one module or package per system, each implementing a port
of `scheduler.core.ports`: mail (SMTP, Maildir), the reply inbox, calendar files and feeds
(`ics`, `feeds`, `http`), CalDAV and Google Calendar. They import `scheduler.core` only; the
CLI (`scheduler/cli/wiring.py`) is the one place that picks them."""
