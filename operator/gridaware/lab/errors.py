"""The lab's one error type: its message is a single line that says what to do."""


class LabError(RuntimeError):
    """A lab operation failed; ``str(err)`` is meant for the user as is."""
