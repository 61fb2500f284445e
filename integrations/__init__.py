"""Gateways to the outside world: calendars, feeds and mail. The scheduler core never imports these."""
