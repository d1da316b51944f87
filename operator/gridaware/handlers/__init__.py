"""Kopf handlers: parse the body into a model, gather a snapshot, decide with ``core``, act
through ``k8s``, and write status only when it changed."""
