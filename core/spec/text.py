"""Text from outside the project, made safe to show and to keep.

On a shared box much of what energy-console shows was written by someone else: model configs and
the errors that quote them, dataset labels, folder and file names, a co-user's session folder.
Such text is never sent to a terminal as it is: `printable` writes every control character,
escape sequence introducer and bidi override as a visible escape (`\\x1b`, `\\u202e`), so it can
neither move the cursor, set the title, clear the screen nor reorder what is read. Such text is
never markup either: views hand it to Rich and Textual as Text / Content or with markup off (an
escaping function cannot be exact: Rich reads a backslash before "[" by what follows it).
`without_secrets` removes credentials from URIs
(user:password@, tokens in query strings) before a text is printed, logged or stored.
"""

from __future__ import annotations

import re

# C0 controls but tab and newline, DEL, C1 controls; bidi embeddings, overrides and isolates,
# and the marks that flip direction: each could change what a reader sees. In one line, tab and
# newline too.
_ACTIVE = "\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069"
_UNSAFE = re.compile(f"[{_ACTIVE}]")
_UNSAFE_IN_LINE = re.compile(f"[\t\n{_ACTIVE}]")

_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*://)(?P<userinfo>[^/\s@?#]+)@")
_SECRET_PARAM = re.compile(
    r"(?P<key>[?&;](?:[A-Za-z0-9_\-]*(?:token|secret|password|passwd|pwd|api[_\-]?key|apikey"
    r"|access[_\-]?key|signature|sig|auth|credential)[A-Za-z0-9_\-]*)=)(?P<value>[^&#\s;]*)",
    re.IGNORECASE)
REDACTED = "***"


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: object, *, one_line: bool = True, max_chars: int | None = None) -> str:
    """`text` as safe terminal text: control characters, escape introducers and bidi controls
    written as visible escapes; with `one_line`, newlines and tabs too. `max_chars` cuts it
    (an ellipsis marks the cut)."""
    out = (_UNSAFE_IN_LINE if one_line else _UNSAFE).sub(_escape, str(text))
    if max_chars is not None and len(out) > max_chars:
        out = out[:max(0, max_chars - 1)] + "…"
    return out


def without_secrets(text: object) -> str:
    """`text` with the credentials of every URI in it replaced by ***: `user:password@` (the
    whole user info) and the values of query parameters named like a token, key or password."""
    out = _USERINFO.sub(lambda m: f"{m['scheme']}{REDACTED}@", str(text))
    return _SECRET_PARAM.sub(lambda m: f"{m['key']}{REDACTED}", out)
