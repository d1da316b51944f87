"""Trace-driven simulator: the operator's own decision code replayed on real grid data,
side by side with simpler policies and the perfect-foresight optimum."""
