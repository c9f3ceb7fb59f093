"""The encrypted vault: the only package that imports apsw and talks SQL.

`open_vault(settings, passphrase)` gives a `Store`; see `store.py` for what it holds and
`vault.py` for how the keys work.
"""

from localrag.store.db import capabilities
from localrag.store.keys import KdfParams
from localrag.store.store import BlobInfo, Store
from localrag.store.vault import (
    change_passphrase,
    create_vault,
    open_vault,
    rotate_key,
    vault_exists,
    vault_info,
)

__all__ = [
    "BlobInfo",
    "KdfParams",
    "Store",
    "capabilities",
    "change_passphrase",
    "create_vault",
    "open_vault",
    "rotate_key",
    "vault_exists",
    "vault_info",
]
