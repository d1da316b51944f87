"""The only code that talks to carbon-intensity and price feeds.

Providers speak each vendor's documented API and turn answers into ``api.signals.Series``;
``chain`` puts them behind a per-zone fallback with a staleness-aware cache, which is all that
the operator and the CLI use.
"""
