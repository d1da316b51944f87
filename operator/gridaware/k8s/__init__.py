"""The only code that talks to a Kubernetes API server, the hub's or a member's.

Everything above this layer receives plain data (models, dicts) and never a client object's
behaviour; tests of this layer run against real API servers from the lab.
"""
