"""Errors a user can cause. The CLI prints them as one line and exits non-zero."""


class LoramemError(Exception):
    """A problem with the user's input or environment, with a message that says what to do."""


class UnknownMemoryError(LoramemError):
    """A memory name that the store does not hold."""


class BaseModelMismatchError(LoramemError):
    """A memory used on a base model other than the one it was written on."""


class AdapterFileError(LoramemError):
    """A memory whose adapter files are missing, truncated or corrupt: rewrite it or remove it.

    Not the caller's input but the store's state, so the server answers it with a 500.
    """


class BelowTargetError(LoramemError):
    """An update whose next version did not read back the memory's target: nothing was committed,
    the previous version stays current."""


class QuestionTooLong(LoramemError):
    """A question (or a chat's messages) whose prompt and answer do not fit in the model's window."""


class UnsupportedAdapter(ValueError):
    """The adapter uses PEFT features that the hook path does not implement: use PEFT instead."""
