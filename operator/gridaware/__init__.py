"""gridaware: run flexible batch work where and when electricity is greenest and cheapest."""

__version__ = "0.1.0"
