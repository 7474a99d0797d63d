"""What a username may be, and the key that makes its spellings one account: the
one place signup, admin creation and the sign-in lookup take their rules from.

Two layers. The older one: a name is stored NFKC-normalised, 1 to 64
characters, without separators, controls or format characters (Unicode Z*, Cc,
Cf, and surrogates, private-use, unassigned), and is unique by its key, NFKC
plus case folding, so `bob`, `Bob` and fullwidth `ｂｏｂ` are one account. On top
of it, the PRECIS `UsernameCaseMapped` profile (RFC 8265 §3.3, the IdentifierClass
of RFC 8264 §4.2): default-ignorable code points, fillers, variation selectors,
symbols and blanks are not identifier characters, so `admin` followed by U+2800,
U+3164 or U+FE0F, each rendering as `admin`, is refused.

PRECIS decides only which names may be created. The key is still NFKC plus case
folding, so every account stored before the rule keeps its key and is found by
the same lookup: it signs in, changes its password, is listed and administered
as before, and no new account can be created under a name the rule refuses.
"""

import unicodedata

from precis_i18n import get_profile

MAX_LENGTH = 64
# Separators (Z*), controls (Cc), format characters (Cf: zero-width joiners, bidi
# overrides), surrogates, private-use and unassigned code points.
_FORBIDDEN_CATEGORIES = frozenset({"Zs", "Zl", "Zp", "Cc", "Cf", "Cs", "Co", "Cn"})
_PRECIS = get_profile("UsernameCaseMapped")
# Lookups never need more than this: the key column is 64 characters, and a
# longer input (case folding lengthens some) simply matches nothing.
_LOOKUP_LENGTH = 128


def display_form(username: str) -> str:
    """The name as stored and shown: NFKC, so compatibility forms (fullwidth
    letters, ligatures) are stored as the characters they stand for."""
    return unicodedata.normalize("NFKC", username)


def key(username: str) -> str:
    """NFKC, case fold, NFKC again (folding can denormalise): the unique key."""
    return unicodedata.normalize("NFKC", display_form(username).casefold())


def lookup_key(username: str) -> str:
    """The key a sign-in looks an account up by, whatever was typed: names the
    rules refuse today still find the accounts stored under them before."""
    return key(username)[:_LOOKUP_LENGTH]


def problem(username: str) -> str | None:
    """Why `username` cannot be a new account's name, or None."""
    name = display_form(username)
    if not 1 <= len(name) <= MAX_LENGTH:
        return f"Username must be 1 to {MAX_LENGTH} characters"
    if any(unicodedata.category(ch) in _FORBIDDEN_CATEGORIES for ch in name):
        return "Username must not contain whitespace, control or invisible characters"
    if len(key(name)) > MAX_LENGTH:
        # Case folding can lengthen a name ("ß" becomes "ss"); the key must fit too.
        return f"Username must be at most {MAX_LENGTH} characters once case-folded"
    try:
        _PRECIS.enforce(name)
    except UnicodeEncodeError:
        return (
            "Username must be made of letters, digits and punctuation; blanks, fillers, "
            "symbols and invisible characters are refused (RFC 8265)"
        )
    return None
