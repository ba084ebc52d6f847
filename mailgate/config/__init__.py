"""Settings: frozen dataclasses loaded from one TOML file — the front door of the config.

``sections.py`` is the schema (one frozen dataclass per table), ``loader.py``
reads and validates the file (every problem one ``ConfigError`` line naming the
key and the file, exit 78), ``credentials.py`` reads the secrets the file only
names. Import from here: ``from mailgate.config import Config, load``.

Imports only the standard library and ``mailgate.errors``.
"""

from mailgate.config.credentials import SECRET_ENV, read_password, read_secret_key
from mailgate.config.desk import LEVELS
from mailgate.config.loader import (
    CONFIG_ENV,
    DEFAULT_CONFIG_PATHS,
    find_config_path,
    from_dict,
    load,
)
from mailgate.config.sections import (
    NOTICE_KINDS,
    PRIORITIES,
    STATUSES,
    Agent,
    AgentMail,
    Config,
    Database,
    Gateway,
    ImapAccount,
    Jobs,
    Lifecycle,
    Limits,
    Listener,
    Mailbox,
    Metrics,
    NoticeFiles,
    Notices,
    Outbound,
    Priority,
    Route,
    Security,
    SmtpRelay,
    Status,
    Storage,
    Team,
    Templates,
    base_address,
    parse_rate,
)
from mailgate.config.web import Web, Webhook
from mailgate.config.webhooks import WEBHOOK_EVENTS, read_webhook_secret

__all__ = [
    "CONFIG_ENV",
    "DEFAULT_CONFIG_PATHS",
    "LEVELS",
    "NOTICE_KINDS",
    "PRIORITIES",
    "SECRET_ENV",
    "STATUSES",
    "WEBHOOK_EVENTS",
    "Agent",
    "AgentMail",
    "Config",
    "Database",
    "Gateway",
    "ImapAccount",
    "Jobs",
    "Lifecycle",
    "Limits",
    "Listener",
    "Mailbox",
    "Metrics",
    "NoticeFiles",
    "Notices",
    "Outbound",
    "Priority",
    "Route",
    "Security",
    "SmtpRelay",
    "Status",
    "Storage",
    "Team",
    "Templates",
    "Web",
    "Webhook",
    "base_address",
    "find_config_path",
    "from_dict",
    "load",
    "parse_rate",
    "read_password",
    "read_secret_key",
    "read_webhook_secret",
]
