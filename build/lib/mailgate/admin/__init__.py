"""Admin: what the CLI commands do, as functions the web desk can call too.

One module per area: ``tickets`` (verbs on one ticket), ``check`` (is everything
ready?), ``templates`` (check and preview), ``quarantine``, ``outbox``,
``database`` (upgrade, directory sync). A CLI module parses arguments and prints;
the work is here (or in the capability's own package).
"""
