"""Errors a user can act on.

Everything the user can fix raises a `LocalragError`: the CLI prints its message on one line and
exits with its `exit_code`; the TUI shows it in a notification. Nothing else catches broadly.
"""


class LocalragError(Exception):
    """An error with a message a user can act on."""

    title = "Error"
    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UsageError(LocalragError):
    title = "Usage"
    exit_code = 2


class WrongPassphrase(LocalragError):
    title = "Wrong passphrase"
    exit_code = 3

    def __init__(self, message: str = "wrong passphrase") -> None:
        super().__init__(message)


class VaultError(LocalragError):
    title = "Vault"
    exit_code = 4


class ModelError(LocalragError):
    title = "Model"
    exit_code = 5


class IngestError(LocalragError):
    """One file could not be added; the batch goes on."""

    title = "Could not add file"
    exit_code = 6


class AdapterError(LocalragError):
    title = "Adapter"
    exit_code = 7
