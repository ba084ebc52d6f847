"""What every core function needs at hand: the config, the blob store and the secret key.

Built once per process by ``open_context`` (which also connects the database),
then passed down explicitly: no module-level singletons besides peewee's
database proxy. Imports config, the store front door, blobs and errors.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailgate import store
from mailgate.blobs import BlobStore, open_store
from mailgate.config import Config, read_secret_key


@dataclass(frozen=True)
class Context:
    config: Config
    blobs: BlobStore
    secret: bytes

    @property
    def loop_token(self) -> str:
        """The value of our loop header: mail carrying it came from this gateway."""
        return self.config.gateway.domain


def open_context(config: Config, *, create_secret: bool = True) -> Context:
    """Connect the database and the blob store for ``config``."""
    store.open_database(config.database.url, sync=config.storage.sync)
    secret = read_secret_key(config, create=create_secret)
    return Context(config=config, blobs=open_store(config), secret=secret)
