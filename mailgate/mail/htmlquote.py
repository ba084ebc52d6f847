"""The quoted history of an HTML reply, cut off: what is left is what the writer wrote.

Pure; part of mailgate.mail; imports only the standard library. Runs on the HTML as
received (before sanitising, which drops the class and id attributes it looks for).
Cut from the first of these on, like the plain-text reply splitter cuts at the
attribution line:

* Thunderbird: ``<div class="moz-cite-prefix">`` (the "On … wrote:" line) or
  ``<blockquote type="cite">``;
* Gmail: ``<div class="gmail_quote">`` (also ``gmail_attr``, the attribution);
* Outlook: ``<div id="divRplyFwdMsg">``, ``<div id="appendonsend">``, ``<hr id="stopSpelling">``,
  and desktop Outlook's reply header block (a div whose style starts with
  ``border:none;border-top:solid``);
* Apple Mail, Yahoo: ``<blockquote type="cite">``, ``<div class="yahoo_quoted">``.

One regular-expression search over the text: linear in its length. The sanitiser
closes whatever element the cut left open.
"""

from __future__ import annotations

import re

_QUOTE_START = re.compile(
    r"""<(?:
        div[^>]{0,400}?\bclass\s*=\s*["']?[^"'>]{0,200}?\b(?:moz-cite-prefix|gmail_quote|gmail_attr|yahoo_quoted)\b
      | blockquote[^>]{0,400}?\btype\s*=\s*["']?cite\b
      | div[^>]{0,400}?\bid\s*=\s*["']?(?:divRplyFwdMsg|appendonsend)\b
      | hr[^>]{0,400}?\bid\s*=\s*["']?stopSpelling\b
      | div[^>]{0,400}?\bstyle\s*=\s*["']?\s*border\s*:\s*none\s*;\s*border-top\s*:\s*solid
    )""",
    re.IGNORECASE | re.VERBOSE,
)


def cut_quoted(html: str) -> str:
    """``html`` up to its quoted history (all of it when there is none)."""
    found = _QUOTE_START.search(html)
    if found is None:
        return html
    return html[: found.start()]
