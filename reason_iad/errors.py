"""The one exception type users see: a clear, one-line message about their input, never a traceback."""


class UserError(ValueError):
    """Bad input or an unmet precondition the user can fix; the message says what to do."""
