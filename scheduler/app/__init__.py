"""The application: it owns the files, the lock and the loop. Loading the config folder,
the state store (TinyDB file, journal, lock), one tick (`tick`), delivery, the hand-over
of coordinators' commands and members' replies, simulation and the log format.

May import `scheduler.core` and `scheduler.compose`; never `integrations` (the CLI hands
it the gateways, typed as the ports in `scheduler.core.ports`)."""
