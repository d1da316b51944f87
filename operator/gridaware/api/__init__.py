"""Typed models shared by every layer: specs, statuses, signals and the region catalog.

Nothing here performs I/O; everything else imports from here, never the other way round.
"""
