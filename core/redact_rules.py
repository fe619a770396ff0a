"""What the redactor looks for: one rule per kind (a regex plus, where one exists, a validator).

The rules are plain data so two engines can run them: `core.redact` scans with Python's `re`, and
the server's `collectors.redact_fast` feeds the same patterns to Hyperscan as a one-pass prefilter
and then runs these rules only on the texts (and kinds) it flagged. Patterns are compiled with
re.ASCII so `\\d`, `\\w` and `\\s` mean the same thing to both engines.

A validator gets (text, start, end) of a match and returns the end of the valid finding (0 to
reject), so it can look at the context (an SSN label) or trim a greedy match (an IBAN).
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import math
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

Validator = Callable[[str, int, int], int]


@dataclass(frozen=True, slots=True)
class Rule:
    """kind: the label in `[REDACTED:<kind>]`. groups: named groups, the first that took part is
    the span redacted (keep "Bearer ", hide the token). triggers: substrings (of the lower-cased text if `lower`)
    one of which must occur for the rule to match at all; a cheap skip for the `re` engine."""

    kind: str
    pattern: str
    validate: Validator | None = None
    groups: tuple[str, ...] = ()
    triggers: tuple[str, ...] = ()
    lower: bool = False


_T = r"A-Za-z0-9_\-"          # characters of a token: a key never starts or ends next to one


# --- validators -------------------------------------------------------------------------------

def _luhn_ok(digits: str) -> bool:
    total = 0
    parity = len(digits) % 2
    for i, ch in enumerate(digits):
        d = ord(ch) - 48
        if i % 2 == parity:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _card_brand_ok(d: str) -> bool:
    """Issuer ranges and lengths (ISO/IEC 7812 IINs of the major networks)."""
    n = len(d)
    p2, p4 = int(d[:2]), int(d[:4])
    if d[0] == "4":
        return n in (13, 16, 19)                          # Visa
    if 51 <= p2 <= 55 or 2221 <= p4 <= 2720:
        return n == 16                                    # Mastercard
    if p2 in (34, 37):
        return n == 15                                    # American Express
    if d.startswith("6011") or 644 <= int(d[:3]) <= 649 or p2 == 65 or p2 == 62:
        return 16 <= n <= 19                              # Discover, UnionPay
    if p2 == 35:
        return 16 <= n <= 19                              # JCB
    if 300 <= int(d[:3]) <= 305 or p2 in (36, 38, 39):
        return 14 <= n <= 19                              # Diners
    if p2 == 50 or 56 <= p2 <= 69:
        return 12 <= n <= 19                              # Maestro
    return False


_CARD_CONTEXT = re.compile(r"(?i:card|visa|master|amex|discover|jcb|diners|maestro|\bcc\b|credit|debit|\bpan\b|pay)", re.A)
_ID_BEFORE = re.compile(r"(?i:order|tracking|invoice|\bref|reference|\bid|\bno\.?|#|sku|account|acct|ticket)\W{0,3}$",
                        re.A)


_IBAN_HEAD = re.compile(r"[A-Za-z]{2}\d\d[ \-](?:[A-Za-z0-9]{4}[ \-]){0,2}$", re.A)


def _card(text: str, start: int, end: int) -> int:
    value = text[start:end]
    digits = value.replace(" ", "").replace("-", "")
    if not 13 <= len(digits) <= 19 or not _card_brand_ok(digits) or not _luhn_ok(digits):
        return 0
    # One random number in ten passes Luhn: an ungrouped one labelled as an order or ticket number
    # is that, unless the text talks about cards.
    if (len(digits) == len(value) and _ID_BEFORE.search(text, max(0, start - 16), start)
            and not _CARD_CONTEXT.search(text, max(0, start - 40), start)):
        return 0
    if _IBAN_HEAD.search(text, max(0, start - 20), start):
        return 0                            # digits inside an IBAN (a wrong one, or the IBAN rule had it)
    return end


# Registered IBAN lengths per country (SWIFT IBAN registry).
IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BI": 27,
    "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27, "DK": 18, "DO": 28,
    "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23,
    "GL": 18, "GR": 27, "GT": 28, "HN": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26,
    "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21,
    "LY": 25, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MN": 20, "MR": 27, "MT": 31, "MU": 30, "NI": 28,
    "NL": 18, "NO": 15, "OM": 23, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22,
    "RU": 33, "SA": 24, "SC": 31, "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25,
    "SV": 28, "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
}


def _iban_mod97_ok(compact: str) -> bool:
    rearranged = compact[4:] + compact[:4]
    rem = 0
    for ch in rearranged:                  # letters are two-digit numbers (A=10 .. Z=35)
        v = ord(ch) - 48 if ch <= "9" else ord(ch) - 55
        rem = (rem * (100 if v > 9 else 10) + v) % 97
    return rem == 1


def _iban(text: str, start: int, end: int) -> int:
    # The pattern is greedy (it may run into the next word): take exactly the registered number of
    # characters, then check the boundary and the checksum. One pass, so a text made of IBAN-shaped
    # words costs O(n), not O(n * length).
    want = IBAN_LENGTHS.get(text[start:start + 2].upper())
    if want is None:
        return 0
    chars: list[str] = []
    i = start
    while i < end and len(chars) < want:
        ch = text[i]
        if ch != " " and ch != "-":
            chars.append(ch)
        i += 1
    if len(chars) != want or (i < len(text) and text[i].isalnum()):
        return 0
    compact = "".join(chars).upper()
    if not compact[2:4].isdigit() or not _iban_mod97_ok(compact):
        return 0
    return i


_SSN_CONTEXT = re.compile(r"(?i:ssn|social[ \-]?security|soc\.? ?sec|ss#|ss no|taxpayer|\btin\b|itin)", re.A)


def _ssn(text: str, start: int, end: int) -> int:
    value = text[start:end]
    digits = value.replace("-", "").replace(" ", "")
    area, group, serial = digits[:3], digits[3:5], digits[5:]
    if area in ("000", "666") or area[0] == "9" or group == "00" or serial == "0000":
        return 0
    if value.count("-") == 2:
        return end                          # 123-45-6789 is the SSN shape; nothing else is written so
    # Spaces or no separator: as likely an order number, so a label must say what it is.
    return end if _SSN_CONTEXT.search(text, max(0, start - 48), start) else 0


_VERSION_BEFORE = re.compile(r"(?i)(?:\bv|version|ver\.?|release|build|firmware|oid|chapter|section|sec\.|"
                             r"figure|fig\.|table|clause|step|item|para\.?|§)[ :=]*$", re.A)


_MESSAGE_ID_LOCAL = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-|[0-9a-fA-F]{16}|[0-9a-fA-F.\-]{20,}@", re.A)


def _email(text: str, start: int, end: int) -> int:
    # A UUID or long hex before the @ is a Message-ID or a generated address, not a person's.
    return 0 if _MESSAGE_ID_LOCAL.match(text, start) else end


def _ipv4(text: str, start: int, end: int) -> int:
    if _VERSION_BEFORE.search(text, max(0, start - 12), start):
        return 0
    return end


def _ipv6(text: str, start: int, end: int) -> int:
    value = text[start:end]
    core = value.split("%", 1)[0]
    if core.count(":") < 2 or not any(c.isdigit() for c in core):
        return 0
    try:
        ipaddress.IPv6Address(core)
    except ValueError:
        return 0
    return end


_PHONE_CONTEXT = re.compile(
    r"(?i:phone|\btel\b|tel:|mobile|\bmob\b|cell|\bfax|call me|call us|call him|call her|call at|call on|"
    r"whatsapp|\bsms|text me|telefon|t[ée]l[ée]phone|handy|hotline|\bdial|\bph\b|\bm:|\bt:)", re.A)
_DATE_LIKE = re.compile(r"\d{4}[-./]\d\d[-./]\d\d|\d\d[-./]\d\d[-./]\d{2,4}(?!\d)", re.A)
_GROUP_SEP = re.compile(r"[ .\-()]+", re.A)
_NATIONAL_REGIONS = ("US", "GB", "DE", "FR", "IN", "AU", "ES", "IT", "NL", "BR", "CH", "AT", "BE", "IE", "SE",
                     "MX", "JP", "PL")
_phonenumbers = None


def _phone_possible(candidate: str, regions: tuple[str | None, ...], local_ok: bool = False) -> bool:
    """libphonenumber's length rules for the country (possible, not assigned: documentation
    numbers such as 07700 900123 are not "valid" but are written like any other)."""
    global _phonenumbers
    if _phonenumbers is None:
        import phonenumbers  # imported on the first phone-shaped candidate: the shim stays light to import

        _phonenumbers = phonenumbers
    pn = _phonenumbers
    for region in regions:
        try:
            number = pn.parse(candidate, region)
        except pn.NumberParseException:
            continue
        reason = pn.is_possible_number_with_reason(number)
        if reason == pn.ValidationResult.IS_POSSIBLE or local_ok and reason == pn.ValidationResult.IS_POSSIBLE_LOCAL_ONLY:
            return True
    return False


def _phone(text: str, start: int, end: int) -> int:
    # Trim trailing digit groups one at a time: "call 415 555 2671 2 times" ends at 2671.
    for _ in range(3):
        value = text[start:end]
        digits = sum(map(str.isdigit, value))
        if digits < 7:
            return 0
        if digits <= 15 and _phone_one(text, start, value, digits):
            return end
        cut = max(value.rfind(" "), value.rfind("-"), value.rfind("."))
        if cut <= 0:
            return 0
        end = start + len(value[:cut].rstrip(" .-()"))
    return 0


_NOT_PHONE_BEFORE = re.compile(r"(?i:isbn|issn|doi|serial|s/n|sku|order|invoice|tracking|ticket|build|version)\W{0,8}$"
                               r"|[A-Za-z]{2}\d\d(?: [A-Za-z0-9]{4})* $", re.A)   # the tail of an IBAN


_SSN_OR_CARD_SHAPE = re.compile(r"\d{3}-\d\d-\d{4}|\d{4}(?:[ \-]\d{4}){2,}", re.A)
_AREA_IN_PARENS = re.compile(r"\(\+?\d{1,4}\)", re.A)


def _phone_one(text: str, start: int, value: str, digits: int) -> bool:
    if (_DATE_LIKE.match(value) or _SSN_OR_CARD_SHAPE.fullmatch(value)
            or _NOT_PHONE_BEFORE.search(text, max(0, start - 24), start)):
        return False
    parts = [p for p in _GROUP_SEP.split(value.strip("+")) if p]
    groups = len(parts)
    if groups > 1 and len(parts[-1]) == 1:
        return False                        # phone numbers do not end in a one-digit group
    label = _PHONE_CONTEXT.search(text, max(0, start - 24), start)
    labelled = label is not None and not any(c.isdigit() for c in text[label.end():start])
    if value.startswith("+") or value.startswith("00") and groups >= 3:
        plus = "+" + value[2:] if value.startswith("00") else value
        return digits >= 8 and (groups >= 2 or labelled or digits >= 10) and _phone_possible(plus, (None,), True)
    if value.count(".") >= 2 and not labelled and not re.fullmatch(r"\(?\d{3}\)?\.\d{3}\.\d{4}|0\d(?:\.\d\d){4}", value):
        return False                        # dotted groups are versions and amounts far more often
    shaped = (groups >= 3 or _AREA_IN_PARENS.match(value) or value[0] == "0" and groups >= 2) and digits >= 8
    if not (shaped or labelled and digits >= 9):
        return False                        # a bare run of digits is an id, a count or a timestamp
    return _phone_possible(value, _NATIONAL_REGIONS)


def _entropy(value: str) -> float:
    n = len(value)
    return -sum(c / n * math.log2(c / n) for c in Counter(value).values())


_PLACEHOLDER = re.compile(
    r"(?i)^(?:\$|%|<|\{|\[|\*{3,}|x{4,}|\.{3}|null|none|nil|true|false|undefined|redacted|hidden|masked|"
    r"string|str|required|optional|example|(?:your|my)[_\-]?(?:api|secret|token|key|pass|own)|env\b|os\.|"
    r"process\.|settings\.|config\.|getenv|secrets?\.|vault:|\(|self\.)", re.A)


def _secret_value(text: str, start: int, end: int, password: bool) -> int:
    value = text[start:end].rstrip(".,)")
    end = start + len(value)
    if _PLACEHOLDER.match(value) or len(set(value)) < 3:
        return 0
    if password:
        return end if len(value) >= 6 or len(value) >= 4 and not value.isalpha() else 0
    if len(value) < 8 or value.isdigit() or value.isalpha() and value.islower():
        return 0
    classes = sum((any(c.isdigit() for c in value), any(c.islower() for c in value),
                   any(c.isupper() for c in value), any(not c.isalnum() for c in value)))
    return end if classes >= 3 or classes == 2 and _entropy(value) >= min(3.0, 0.8 * math.log2(len(value))) else 0


def _generic_secret(text: str, start: int, end: int) -> int:
    label = text[max(0, start - 40):start].lower()
    password = any(w in label for w in ("pass", "pwd", "passphrase"))
    return _secret_value(text, start, end, password)


def _said_password(text: str, start: int, end: int) -> int:
    # "my password is Tr0ub4dor&3": prose, so demand a value that does not read as a word.
    value = text[start:end].rstrip(".,)!?")
    if len(value) < 6 or value.isalpha():
        return 0
    return start + len(value)


def _bearer(text: str, start: int, end: int) -> int:
    value = text[start:end].rstrip(".")
    end = start + len(value)
    if value.isalpha() and (value.islower() or len(value) < 16):
        return 0                            # "bearer authentication", "Bearer token"
    return end


def _basic(text: str, start: int, end: int) -> int:
    value = text[start:end]
    try:
        decoded = base64.b64decode(value + "=" * (-len(value) % 4), validate=True)
    except (binascii.Error, ValueError):
        return 0
    return end if b":" in decoded and all(32 <= b < 127 for b in decoded) else 0


def _aws_secret(text: str, start: int, end: int) -> int:
    value = text[start:end]
    return end if any(c.isdigit() or c in "+/" for c in value) and not value.isupper() else 0


# --- the rules, in priority order (when two findings start at the same place the first wins) ----

_SECRET_KEYS = (r"api[_.\-]?key|apikey|secret|client[_.\-]?secret|secret[_.\-]?key|access[_.\-]?key|"
                r"access[_.\-]?token|auth[_.\-]?token|refresh[_.\-]?token|session[_.\-]?token|id[_.\-]?token|"
                r"token|password|passwd|pwd|passphrase|pass|private[_.\-]?key[_.\-]?id|private[_.\-]?key|"
                r"credentials?|signature|sig|encryption[_.\-]?key|signing[_.\-]?key|master[_.\-]?key|"
                r"account[_.\-]?key|x[_.\-]?api[_.\-]?key|webhook[_.\-]?secret|db[_.\-]?pass")
_SECRET_FIRST = "".join(sorted({k[0] for k in _SECRET_KEYS.split("|")} | {k[0].upper() for k in _SECRET_KEYS.split("|")}))
_ASSIGN = r"[\"']?[ \t]*(?:[:=]|=>|:=)[ \t]*[\"']?"
_B64 = r"A-Za-z0-9+/"

RULES: tuple[Rule, ...] = (
    Rule("private_key",
         r"-----BEGIN[A-Z0-9 ]{0,30} PRIVATE KEY(?: BLOCK)?-----"
         r"[A-Za-z0-9+/=\s\\:,.]*(?:-(?!----END)[A-Za-z0-9+/=\s\\:,.]*)*"
         r"(?:-----END[A-Z0-9 ]{0,30} PRIVATE KEY(?: BLOCK)?-----)?"),
    Rule("jwt", rf"eyJ(?<![{_T}]eyJ)[{_T}]{{8,}}\.eyJ[{_T}]{{8,}}\.[{_T}]*(?![{_T}])"),
    Rule("anthropic_key", rf"sk-ant-(?<![{_T}]sk-ant-)[{_T}]{{20,}}(?![{_T}])"),
    Rule("openai_key", rf"sk-(?<![{_T}]sk-)(?!ant-)(?:proj-|svcacct-|admin-|None-)?[{_T}]{{20,}}(?![{_T}])"),
    Rule("aws_access_key", r"(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AIPA|ANPA|ANVA|APKA|AROA|ASCA|A3T[A-Z0-9])"
                           r"(?<![A-Za-z0-9]A...)[A-Z0-9]{16}(?![A-Za-z0-9])"),
    Rule("aws_secret_key",
         r"(?i:aws[_.\- ]?(?:secret[_.\- ]?(?:access[_.\- ]?)?key|sak)|secret[_.\- ]?access[_.\- ]?key)"
         rf"(?:{_ASSIGN}|[ \t]+)(?P<_s>[{_B64}]{{40}})(?![{_B64}=])", _aws_secret, ("_s",), ("secret", "aws"), True),
    Rule("github_token", rf"(?:gh[pousr]_(?<![{_T}]....)[A-Za-z0-9]{{36,255}}|"
                         rf"github_pat_(?<![{_T}]github_pat_)[A-Za-z0-9_]{{22,255}})(?![{_T}])"),
    Rule("gitlab_token", rf"gl(?<![{_T}]gl)(?:pat|ptt|rt|dt|soat|cbt|ffct|imt|agent|oas|ft|ct)-[{_T}]{{20,}}(?![{_T}])"),
    Rule("slack_webhook", r"https?://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9/_\-+]{16,}"),
    Rule("slack_token", rf"(?:xox[abposre]-(?<![{_T}]xox.-)(?:[A-Za-z0-9]+-){{1,5}}[A-Za-z0-9]{{6,}}|"
                        rf"xapp-(?<![{_T}]xapp-)\d-[A-Z0-9]+-\d+-[a-z0-9]+)(?![{_T}])"),
    Rule("stripe_key", rf"(?:[sr]k_(?<![{_T}].k_)(?:live|test|prod)_[A-Za-z0-9]{{10,99}}|"
                       rf"whsec_(?<![{_T}]whsec_)[A-Za-z0-9]{{24,}})(?![{_T}])"),
    Rule("google_api_key", rf"AIza(?<![{_T}]AIza)[{_T}]{{35}}(?![{_T}])"),
    Rule("google_oauth_secret", rf"GOCSPX-(?<![{_T}]GOCSPX-)[{_T}]{{24,40}}(?![{_T}])"),
    Rule("azure_key", r"(?=[A-Za-z])(?i:accountkey|sharedaccesskey|sharedaccesssignature|primarykey|secondarykey)"
                      rf"[ \t]*=[ \t]*(?P<_s>[{_B64}]{{20,}}={{0,2}})",
         None, ("_s",), ("accountkey", "sharedaccess", "primarykey", "secondarykey"), True),
    Rule("azure_key", r"(?=[A-Za-z0-9_~.])(?<![A-Za-z0-9_~.\-])[A-Za-z0-9_~.]{3}\dQ~[A-Za-z0-9_~.\-]{31,34}"
                      r"(?![A-Za-z0-9_~\-])(?!\.[A-Za-z0-9_~\-])", None, (), ("Q~",)),   # Azure AD client secret
    Rule("twilio_key", r"SK(?<![A-Za-z0-9]SK)[0-9a-fA-F]{32}(?![A-Za-z0-9])"),
    Rule("sendgrid_key", rf"SG\.(?<![{_T}]SG\.)[{_T}]{{22}}\.[{_T}]{{43}}(?![{_T}])"),
    Rule("huggingface_token", rf"(?:hf_(?<![{_T}]hf_)|api_org_(?<![{_T}]api_org_))[A-Za-z0-9]{{30,}}(?![{_T}])"),
    Rule("npm_token", rf"npm_(?<![{_T}]npm_)[A-Za-z0-9]{{36}}(?![{_T}])"),
    Rule("pypi_token", rf"pypi-(?<![{_T}]pypi-)AgE[{_T}]{{50,}}"),
    Rule("url_credentials", r"://(?P<_s>[^\s:/?#@\"'<>\[\]]*:[^\s/?#\"'<>]+)@(?=[A-Za-z0-9\[])", None, ("_s",)),
    Rule("bearer_token", r"(?i:bearer)(?<![A-Za-z0-9]......)[ \t]+(?P<_s>[A-Za-z0-9\-._~+/]{8,}=*)",
         _bearer, ("_s",), ("bearer",), True),
    Rule("basic_auth", rf"(?i:basic)(?<![A-Za-z0-9].....)[ \t]+(?P<_s>[{_B64}]{{8,}}={{0,2}})(?![{_B64}=])",
         _basic, ("_s",), ("basic",), True),
    Rule("bearer_token",
         rf"(?i:authorization|x-auth-token|x-access-token){_ASSIGN}(?!(?i:bearer|basic)[ \t])"
         r"(?:(?i:token|apikey|api-key|sso-key|key)[ \t]+)?(?P<_s>[A-Za-z0-9\-._~+/:]{12,}=*)",
         _bearer, ("_s",), ("authorization", "x-auth-token", "x-access-token"), True),
    # Kinds without a literal start open with (?=<first characters>), which lets `re` skip ahead in
    # C (2-5x faster than a leading lookbehind), then their boundary lookbehind, which the server's
    # prefilter keeps, so it does not fire inside every longer number or word.
    Rule("us_ssn", r"(?=\d)(?<![\w.\-+/])\d{3}(?:-\d\d-| \d\d |\d\d)\d{4}(?![\w])(?![.\-]\d)", _ssn),
    Rule("card_number", r"(?=\d)(?<![\w.\-])\d(?:[ \-]?\d){11,18}(?![\w])(?![.\-]\d)", _card),
    Rule("iban", rf"(?=[A-Za-z]{{2}}\d\d)(?<![A-Za-z0-9])(?i:{'|'.join(sorted(IBAN_LENGTHS))})\d\d(?:[ \-]?[A-Za-z0-9]){{11,30}}", _iban),
    Rule("ipv4", r"(?=\d)(?<![\w.])(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
                 r"(?:\.(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}(?![\w])(?!\.\d)", _ipv4),
    Rule("ipv6", r"(?=[0-9A-Fa-f:])(?<![\w:.])(?:[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{0,4}){2,7}|::[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4}){0,6})"
                 r"(?:\.\d{1,3}){0,3}(?:%[A-Za-z0-9_.\-]{1,15})?(?![\w:])(?!\.\d)", _ipv6, (), (":",)),
    Rule("email", r"(?=[A-Za-z0-9._%+\-])(?<![A-Za-z0-9._%+\-])[A-Za-z0-9._%+\-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9\-]{0,62}[A-Za-z0-9])?"
                  r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]{0,62}[A-Za-z0-9])?){0,8}\.[A-Za-z]{2,24}(?![A-Za-z0-9\-])",
         _email, (), ("@",)),
    Rule("phone", r"(?=[+(\d])(?<![\w.+\-/])(?!\d{4}-\d\d-\d\d|\d\d?[./-]\d\d?[./-]\d{2,4}(?!\d))(?:\+|\(\+?|(?<!\d[ .\-]))\d(?:[ .\-()]{0,2}\d){5,18}\d(?![\w])(?![.\-/]\d)", _phone),
    Rule("secret", rf"(?=[{_SECRET_FIRST}])(?<![A-Za-z0-9])(?i:{_SECRET_KEYS})[\"']?[ \t]*(?:[:=]|=>|:=)[ \t]*"
                   r"(?:\"(?P<_q>[^\"\n]{4,256})\"|'(?P<_r>[^'\n]{4,256})'|(?P<_s>[^\s\"'`,;&<>]{4,}))",
         _generic_secret, ("_q", "_r", "_s"),
         ("key", "secret", "token", "pass", "pwd", "credential", "sig"), True),
    Rule("secret", r"(?=[Pp])(?<![A-Za-z0-9])(?i:(?:password|passcode|passphrase)[ \t]+(?:is|was)[ \t]*:?[ \t]+)(?P<_s>\S{6,})",
         _said_password, ("_s",), ("pass",), True),
)

KINDS: tuple[str, ...] = tuple(dict.fromkeys(r.kind for r in RULES))
