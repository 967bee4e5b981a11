"""The one exception type users see: a one-line, actionable message."""


class ChromoschedError(ValueError):
    """A user-facing error (bad input file, bad argument, impossible budget).

    The message is a single line naming the file or value and the problem; the CLI prints it
    as ``chromosched: error: <message>`` and exits with status 2.
    """

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))
