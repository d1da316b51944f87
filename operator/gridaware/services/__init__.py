"""Services between the Kopf handlers and the pure decisions in ``core``.

Each service is built once at start-up with its collaborators passed in (the cache, the status
store, the hub and member gateways, the feeds, the clock, the event recorder, the metrics), so
a table-driven test can run a whole scenario in memory in milliseconds, and the e2e tests run
the same code against the lab's real API servers. No service reads the wall clock, the
environment or a module global.
"""
