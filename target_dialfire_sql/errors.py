"""The one error type the loader raises for problems a user must act on.

The target catches it at the command line and prints its message as one line (no traceback),
then exits non-zero. Messages name the table, column and key involved and never carry a secret.
"""

from __future__ import annotations


class LoadError(Exception):
    """Something the user must fix: bad settings, a value that does not fit, a refused write."""
