"""The database for admins: migrate the schema and mirror the config's agents and teams.

``upgrade`` is safe to run twice and from several processes at once (the
migrations run under the schema lock; the directory rows are created first-wins).
"""

from __future__ import annotations

from mailgate import store
from mailgate.config import Config
from mailgate.store import directory
from mailgate.store.schema import LOCK_WAIT_SECONDS, Upgrade


def upgrade(config: Config, wait: float = LOCK_WAIT_SECONDS) -> Upgrade:
    """Apply pending migrations, then bring agents and teams up to date."""
    done = store.upgrade(wait)
    sync_directory(config)
    return done


def sync_directory(config: Config) -> None:
    """Mirror the config's teams and agents into the database (names may change)."""
    with store.write_transaction():
        directory.sync(config)
