"""The one spelling of an email address that accounts are unique by.

NFKC folds compatibility look-alikes (full-width letters, ligatures, superscripts) into their
plain forms and ``casefold`` folds case beyond ASCII, so a full-width ``ada@example.com``
(U+FF41...), ``ada@example.com`` and ``Ada@Example.com`` are one account. Applied to the whole address: domains are
case-insensitive too, and the validator has already turned an internationalised domain into one
form.
"""

from __future__ import annotations

import unicodedata


def canonical_email(email: str) -> str:
    return unicodedata.normalize("NFKC", email).casefold().strip()
