"""Errors raised for bad input data: they name the file, the line and the fix."""


class DataError(ValueError):
    """A dataset file is missing, malformed or unreadable.

    The message always names the file (and the 1-based line when one is at
    fault), says what was expected, and how to fix it.

    Args:
        path: the file (or directory) at fault.
        message: what is wrong and what was expected.
        line: optional 1-based line number.
        hint: optional fix for the user.
    """

    def __init__(self, path, message, line=None, hint=None):
        self.path = str(path)
        self.line = line
        self.hint = hint
        where = self.path if line is None else f"{self.path}:{line}"
        text = f"{where}: {message}"
        if hint:
            text += f" ({hint})"
        super().__init__(text)
