"""The project's user-facing errors: they name the file, line or setting at fault and the fix.

The CLI prints a `UserError` as one line and exits with status 2; any other exception is a programming error and
keeps its traceback. These live in the lowest room (`pipelines`) so that `pipelines` and `tasks` can both raise them.
"""


class UserError(Exception):
    """Something the user can fix (a setting, a path, an input): printed as one line by the CLI."""


class DataError(UserError, ValueError):
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


class ConfigError(UserError, ValueError):
    """A config value, flag or run directory that cannot be used as given."""


class UnknownKeyError(ConfigError, KeyError):
    """An unknown config key or task name (a `KeyError` whose message is not quoted)."""

    def __str__(self):
        return str(self.args[0]) if self.args else ""


class RunDirError(UserError, FileNotFoundError):
    """A run directory or SavedModel folder that is missing or incomplete."""
