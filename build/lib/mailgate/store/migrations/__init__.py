"""Named schema migrations, one module each, applied in name order.

A migration is a module ``NNNN_what_it_does.py`` here with one function::

    def apply(db, dialect: str) -> None:   # dialect: "sqlite" or "postgresql"
        db.execute_sql("ALTER TABLE ticket ADD COLUMN sla_due_at ...")

``mailgate db upgrade`` finds the modules by themselves (no list to edit), applies
the ones the ``migration`` table does not name yet in name order, and records
each; all of it in one transaction under the schema lock. Rules:

* never edit a migration that has been merged: add a new one;
* take the next number you see; two branches that pick the same number both run
  (in name order), so a migration touches only its own capability's tables;
* a model field added in ``store/`` needs the migration adding its column
  (``tests/test_migrations.py`` compares the migrated schema with the models).
"""
