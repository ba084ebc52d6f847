"""Canned answers: ``[answers] dir`` of Jinja texts, inserted by ``#answer NAME`` in a reply.

The front door: ``expand`` (the agents' mail reader calls it), ``answers`` / ``answer``
/ ``render`` for ``mailgate answers list|show``, ``check`` for ``templates check``.
"""

from mailgate.answers.library import Answer, answer, answers, check, expand, render

__all__ = ["Answer", "answer", "answers", "check", "expand", "render"]
