"""Command groups of the ``paretonas`` CLI."""


class CliError(Exception):
    """A user error: printed as one line, exit status 2."""
