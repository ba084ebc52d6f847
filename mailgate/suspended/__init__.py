"""The suspended queue: spam and blocked senders, kept out of the desk and never answered.

The front door. ``judge`` says whether a mail is suspect (the plan asks it); the
queue itself — list, show, release, delete, purge — is ``mailgate.admin.suspended``
over ``mailgate.store.suspended``. A suspended mail makes no ticket and no notice
(no backscatter to forged senders); released, it is processed as if it had just
arrived, acknowledgement included.
"""

from mailgate.suspended.judge import Suspicion, judge

__all__ = ["Suspicion", "judge"]
