"""The pure core: config values, times and cycles, availability, the slot finder, the
planner, the outbox records, the ports the edges implement, and every error class.

Values in, values out: nothing here opens a file or a socket, reads the environment or the
clock, or imports `scheduler.compose`, `scheduler.app`, `scheduler.cli` or `integrations`
(tests/test_layers.py checks)."""
