"""Pure decisions: forecasting, scoring, placement, shifting, migration and accounting.

Nothing here performs I/O or reads the clock: every function receives the time and the data it
needs as values, which is what lets the simulator replay years of decisions exactly as the
operator would make them.
"""
