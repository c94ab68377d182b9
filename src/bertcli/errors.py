"""The one exception type that the CLI turns into a single line and exit code 2."""


class UserError(Exception):
    """A problem with what the user gave us (a file, a flag, a config value).

    The message is one line that names the problem and the fix; the CLI prints it without a
    traceback and exits with code 2.
    """

    exit_code = 2
