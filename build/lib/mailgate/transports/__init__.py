"""Transports hand raw bytes and an ``Envelope`` to the gateway and get an ``Outcome`` back.

They import only ``mailgate.envelope``, ``errors``, ``logs`` and ``config``:
never intake, the store, lifecycle or notices. ``app.py`` wires them to intake.
"""
