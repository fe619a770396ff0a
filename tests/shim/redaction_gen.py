"""A generated, labelled redaction corpus: thousands of positives of every kind in many text
formats (prompts, logs, stack traces, JSON, code, URLs, CSV, HTTP dumps, email headers), and
near-miss negatives (invalid checksums, versions, UUIDs, hashes, timestamps, order numbers, git
SHAs, base64 blobs, placeholders).

`corpus(seed)` is deterministic. Each example is assigned to "tune" or "holdout" by a hash of its
index; the rules were tuned on "tune" only, and the tests assert the targets on "holdout".
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import string
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import phonenumbers
from phonenumbers import PhoneNumberFormat, PhoneNumberType


@dataclass(frozen=True)
class Example:
    text: str
    labels: tuple[tuple[str, int, int], ...]   # (kind, start, end): the span that must be redacted
    fmt: str
    split: str                                  # "tune" | "holdout"


ALNUM = string.ascii_letters + string.digits
B64 = ALNUM + "+/"
B64URL = ALNUM + "-_"
HEX = "0123456789abcdef"


def _rand(rng: random.Random, alphabet: str, n: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


# --- values of each kind: (kind, value, hint) where hint names a label a writer would put before it

def _luhn(prefix: str, length: int, rng: random.Random) -> str:
    body = prefix + _rand(rng, string.digits, length - len(prefix) - 1)
    for check in string.digits:
        digits = body + check
        total = 0
        for i, ch in enumerate(reversed(digits)):
            d = int(ch)
            if i % 2 == 1:
                d = d * 2 - 9 if d > 4 else d * 2
            total += d
        if total % 10 == 0:
            return digits
    raise AssertionError


def _card(rng: random.Random, valid: bool = True) -> str:
    prefix, length = rng.choice([("4", 16), ("4", 16), ("4", 13), ("4", 19), ("51", 16), ("55", 16), ("2221", 16),
                                 ("2720", 16), ("34", 15), ("37", 15), ("6011", 16), ("65", 16), ("3530", 16),
                                 ("36", 14), ("62", 16), ("62", 19)])
    number = _luhn(prefix, length, rng)
    if not valid:
        number = number[:-1] + str((int(number[-1]) + rng.randrange(1, 10)) % 10)
    style = rng.randrange(4)
    if style == 0:
        return number
    sep = " " if style in (1, 3) else "-"
    if length == 15:
        return sep.join((number[:4], number[4:10], number[10:]))
    if length == 14:
        return sep.join((number[:4], number[4:10], number[10:]))
    return sep.join(number[i:i + 4] for i in range(0, length, 4))


_IBAN_FORMATS = {  # country: (bban pattern: n=digit, a=upper letter, c=alnum)
    "DE": "n" * 18, "FR": "n" * 10 + "c" * 11 + "nn", "GB": "aaaa" + "n" * 14, "ES": "n" * 20, "IT": "a" + "n" * 10 + "c" * 12,
    "NL": "aaaa" + "n" * 10, "BE": "n" * 12, "CH": "n" * 5 + "c" * 12, "AT": "n" * 16, "PL": "n" * 24, "PT": "n" * 21,
    "IE": "aaaa" + "n" * 14, "SE": "n" * 20, "NO": "n" * 11, "DK": "n" * 14, "FI": "n" * 14, "LU": "nnn" + "c" * 13,
    "SA": "nn" + "c" * 18, "AE": "n" * 19, "TR": "n" * 6 + "c" * 16, "BR": "n" * 23 + "ac", "RO": "aaaa" + "c" * 16,
}


def _iban(rng: random.Random, valid: bool = True) -> str:
    country = rng.choice(sorted(_IBAN_FORMATS))
    bban = "".join(rng.choice(string.digits if p == "n" else string.ascii_uppercase if p == "a" else
                              string.ascii_uppercase + string.digits) for p in _IBAN_FORMATS[country])
    num = "".join(str(int(c, 36)) for c in bban + country + "00")
    check = 98 - int(num) % 97
    if not valid:
        check = rng.choice([c for c in range(2, 99) if c != check])
    iban = f"{country}{check:02d}{bban}"
    style = rng.randrange(5)
    if style in (1, 2):
        iban = " ".join(iban[i:i + 4] for i in range(0, len(iban), 4))
    if style == 3:
        iban = iban.lower() if rng.random() < 0.5 else " ".join(iban[i:i + 4] for i in range(0, len(iban), 4)).lower()
    return iban


def _ssn(rng: random.Random, valid: bool = True) -> str:
    area = rng.choice([a for a in range(1, 900) if a != 666])
    group, serial = rng.randrange(1, 100), rng.randrange(1, 10000)
    if not valid:
        which = rng.randrange(5)
        area = (0, 666, rng.randrange(900, 1000), area, area)[which]
        group = 0 if which == 3 else group
        serial = 0 if which == 4 else serial
    return f"{area:03d}-{group:02d}-{serial:04d}"


_PHONE_REGIONS = ["US", "US", "US", "GB", "GB", "DE", "FR", "IN", "AU", "ES", "IT", "NL", "BR", "JP", "CH", "MX",
                  "SE", "PL", "AT", "BE", "IE", "CA"]


def _phone(rng: random.Random) -> tuple[str, bool]:
    """A phone number written some way people write them, and whether it needs a label nearby."""
    region = rng.choice(_PHONE_REGIONS)
    kind = rng.choice([PhoneNumberType.FIXED_LINE, PhoneNumberType.MOBILE])
    example = phonenumbers.example_number_for_type(region, kind) or phonenumbers.example_number(region)
    nsn = str(example.national_number)
    for _ in range(20):  # vary the subscriber digits, keep what makes it possible for the country
        cand = nsn[:-4] + _rand(rng, string.digits, 4)
        num = phonenumbers.parse("+" + str(example.country_code) + cand)
        if phonenumbers.is_possible_number(num):
            break
    style = rng.randrange(9)
    if style == 0:
        national = phonenumbers.format_number(num, PhoneNumberFormat.NATIONAL)
        return national, national.isdigit()
    if style in (1, 2):
        return phonenumbers.format_number(num, PhoneNumberFormat.INTERNATIONAL), False
    if style == 3:
        return phonenumbers.format_number(num, PhoneNumberFormat.E164), False
    if style == 4:
        intl = phonenumbers.format_number(num, PhoneNumberFormat.INTERNATIONAL)
        return intl.replace(" ", rng.choice(["-", ".", " "]), 1).replace("-", rng.choice(["-", " "])), False
    if style == 5:
        return "00" + phonenumbers.format_number(num, PhoneNumberFormat.INTERNATIONAL)[1:], False
    if style == 6 and region in ("GB", "DE", "CH", "AT", "IT", "NL", "BE", "FR"):
        intl = phonenumbers.format_number(num, PhoneNumberFormat.INTERNATIONAL)
        cc, rest = intl.split(" ", 1)
        return f"{cc} (0){rest}", False
    if style == 7:
        national = phonenumbers.format_number(num, PhoneNumberFormat.NATIONAL)
        return "".join(c for c in national if c.isdigit()), True          # bare digits: needs a label
    if region in ("US", "CA"):
        d = str(num.national_number)
        return rng.choice([f"{d[:3]}-{d[3:6]}-{d[6:]}", f"{d[:3]}.{d[3:6]}.{d[6:]}", f"({d[:3]}) {d[3:6]}-{d[6:]}",
                           f"{d[:3]} {d[3:6]} {d[6:]}", f"+1-{d[:3]}-{d[3:6]}-{d[6:]}", f"1-{d[:3]}-{d[3:6]}-{d[6:]}"]), False
    national = phonenumbers.format_number(num, PhoneNumberFormat.NATIONAL)
    return national, national.isdigit()


def _email(rng: random.Random) -> str:
    first = rng.choice(["anna", "li", "omar", "j", "maria", "ng", "sven", "priya", "o.neil", "zoe", "KIM", "x"])
    last = rng.choice(["smith", "wei", "garcia", "doe", "müller".replace("ü", "u"), "nakamura", "rossi", "k", ""])
    sep = rng.choice([".", "_", "-", "", "+"])
    local = first + (sep + last if last else "") + (str(rng.randrange(100)) if rng.random() < 0.3 else "")
    if sep == "+":
        local = first + "+" + rng.choice(["news", "billing", "test", "a1"])
    domain = rng.choice(["example.com", "mail.example.org", "corp.example.co.uk", "uni.example.edu", "example.io",
                         "sub.dept.example.de", "example-mail.net", "EXAMPLE.COM", "xn--bcher-kva.example", "ex.museum"])
    return f"{local}@{domain}"


def _ipv4(rng: random.Random) -> str:
    first = rng.choice([10, 172, 192, 203, 198, 8, 34, 52, 100, 127, rng.randrange(1, 224)])
    return f"{first}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"


def _ipv6(rng: random.Random) -> str:
    groups = [f"{rng.randrange(65536):x}" for _ in range(8)]
    groups[0] = rng.choice(["2001", "2a00", "fe80", "2600", "fd12", "2001"])
    if groups[0] == "2001":
        groups[1] = "db8"
    style = rng.randrange(6)
    if style == 0:
        return ":".join(g.zfill(4) for g in groups)
    if style == 1:
        return ":".join(groups)
    if style in (2, 3):
        k = rng.randrange(2, 6)
        return ":".join(groups[:k]) + "::" + ":".join(groups[k + rng.randrange(1, 8 - k):] or [groups[7]])
    if style == 4:
        return f"::ffff:{rng.randrange(1, 224)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
    return f"fe80::{groups[5]}:{groups[6]}:{groups[7]}"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _jwt(rng: random.Random) -> str:
    header = _b64url(json.dumps({"alg": rng.choice(["HS256", "RS256", "ES256"]), "typ": "JWT"}).encode())
    payload = _b64url(json.dumps({"sub": str(rng.randrange(10**6)), "name": "x", "iat": 1700000000 + rng.randrange(10**6),
                                  "scope": rng.choice(["read", "read write", "admin"])}).encode())
    return f"{header}.{payload}.{_rand(rng, B64URL, rng.choice([43, 86, 342]))}"


def _pem(rng: random.Random, escaped: bool = False) -> str:
    label = rng.choice(["RSA PRIVATE KEY", "PRIVATE KEY", "EC PRIVATE KEY", "OPENSSH PRIVATE KEY",
                        "ENCRYPTED PRIVATE KEY", "DSA PRIVATE KEY", "PGP PRIVATE KEY BLOCK"])
    lines = [_rand(rng, B64, 64) for _ in range(rng.randrange(3, 12))] + [_rand(rng, B64, rng.randrange(4, 60)) + "=="]
    nl = "\\n" if escaped else "\n"
    return f"-----BEGIN {label}-----{nl}" + nl.join(lines) + f"{nl}-----END {label}-----"


def _bearer(rng: random.Random) -> str:
    return rng.choice([_rand(rng, ALNUM, rng.randrange(20, 64)), _rand(rng, B64URL + ".~", rng.randrange(24, 80)) + _rand(rng, ALNUM, 2),
                       "ya29." + _rand(rng, B64URL, 120), _rand(rng, HEX, 40)])


def _basic(rng: random.Random) -> str:
    user = rng.choice(["admin", "svc-billing", "jane", "api", "deploy"])
    return base64.b64encode(f"{user}:{_rand(rng, ALNUM + '!@#', rng.randrange(8, 24))}".encode()).decode()


def _password(rng: random.Random) -> str:
    return rng.choice([_rand(rng, ALNUM, rng.randrange(10, 24)), _rand(rng, ALNUM + "!@#%^*_-", rng.randrange(8, 20)),
                       rng.choice(["Tr0ub4dor#3", "hunter22!", "Summer2024!", "P@ssw0rd123", "s3cr3t-Passw0rd"])])


def _aws_secret(rng: random.Random) -> str:
    while True:
        v = _rand(rng, B64, 40)
        if any(c.isdigit() or c in "+/" for c in v) and not v.isupper():
            return v


VALUE_GENERATORS: dict[str, Callable[[random.Random], str]] = {
    "email": _email,
    "card_number": _card,
    "iban": _iban,
    "us_ssn": _ssn,
    "ipv4": _ipv4,
    "ipv6": _ipv6,
    "jwt": _jwt,
    "private_key": _pem,
    "bearer_token": _bearer,
    "basic_auth": _basic,
    "openai_key": lambda r: r.choice(["sk-proj-" + _rand(r, B64URL, 156), "sk-" + _rand(r, ALNUM, 48),
                                      "sk-svcacct-" + _rand(r, B64URL, 120), "sk-proj-" + _rand(r, ALNUM, 48)]),
    "anthropic_key": lambda r: r.choice(["sk-ant-api03-", "sk-ant-admin01-"]) + _rand(r, B64URL, 93) + "AA",
    "aws_access_key": lambda r: r.choice(["AKIA", "ASIA", "AIDA", "AROA"]) + _rand(r, string.ascii_uppercase + "234567", 16),
    "aws_secret_key": _aws_secret,
    "github_token": lambda r: r.choice(["ghp_", "gho_", "ghs_", "ghu_", "ghr_"]) + _rand(r, ALNUM, 36)
    if r.random() < 0.7 else "github_pat_11" + _rand(r, string.ascii_uppercase + string.digits, 20) + "_" + _rand(r, ALNUM, 59),
    "gitlab_token": lambda r: r.choice(["glpat-", "glpat-", "glptt-", "gldt-"]) + _rand(r, B64URL, 20),
    "slack_token": lambda r: r.choice([f"xoxb-{r.randrange(10**11, 10**12)}-{r.randrange(10**12, 10**13)}-{_rand(r, ALNUM, 24)}",
                                       f"xoxp-{r.randrange(10**11, 10**12)}-{r.randrange(10**11, 10**12)}-{r.randrange(10**12, 10**13)}-{_rand(r, HEX, 32)}",
                                       f"xapp-1-A{_rand(r, string.ascii_uppercase + string.digits, 10)}-{r.randrange(10**12, 10**13)}-{_rand(r, HEX, 64)}"]),
    "slack_webhook": lambda r: f"https://hooks.slack.com/services/T{_rand(r, string.ascii_uppercase + string.digits, 8)}/"
                               f"B{_rand(r, string.ascii_uppercase + string.digits, 10)}/{_rand(r, ALNUM, 24)}",
    "stripe_key": lambda r: r.choice(["sk_live_", "rk_live_", "sk_test_", "rk_test_"]) + _rand(r, ALNUM, r.choice([24, 34, 99]))
    if r.random() < 0.85 else "whsec_" + _rand(r, ALNUM, 32),
    "google_api_key": lambda r: "AIza" + _rand(r, B64URL, 35),
    "google_oauth_secret": lambda r: "GOCSPX-" + _rand(r, B64URL, 28),
    "azure_key": lambda r: _rand(r, ALNUM, 3) + str(r.randrange(10)) + "Q~" + _rand(r, ALNUM + "_~.-", 34)
    if r.random() < 0.4 else _rand(r, B64, 86) + "==",
    "twilio_key": lambda r: "SK" + _rand(r, HEX, 32),
    "sendgrid_key": lambda r: "SG." + _rand(r, B64URL, 22) + "." + _rand(r, B64URL, 43),
    "huggingface_token": lambda r: "hf_" + _rand(r, ALNUM, 34),
    "npm_token": lambda r: "npm_" + _rand(r, ALNUM, 36),
    "pypi_token": lambda r: "pypi-AgEIcHlwaS5vcmc" + _rand(r, B64URL, 70),
    "secret": _password,
}


# --- how each kind is written: (prefix, suffix) around the value, by label style ----------------

def _labelled(kind: str, value: str, rng: random.Random) -> tuple[str, str]:
    """A label that belongs right before the value, where the kind needs one (or it reads better)."""
    if kind == "aws_secret_key":
        return rng.choice([("aws_secret_access_key = ", ""), ("AWS_SECRET_ACCESS_KEY=", ""), ('"SecretAccessKey": "', '"'),
                           ("aws_secret_access_key: ", ""), ("--aws-secret-access-key ", ""), ("AWS secret key: ", "")])
    if kind == "bearer_token":
        return rng.choice([("Authorization: Bearer ", ""), ("authorization: bearer ", ""), ("-H 'Authorization: Bearer ", "'"),
                           ('"Authorization": "Bearer ', '"'), ("Bearer ", "")])
    if kind == "basic_auth":
        return rng.choice([("Authorization: Basic ", ""), ("-H 'Authorization: Basic ", "'"), ('"authorization": "Basic ', '"')])
    if kind == "azure_key" and value.endswith("=="):
        return rng.choice([("DefaultEndpointsProtocol=https;AccountName=acct1;AccountKey=", ";EndpointSuffix=core.windows.net"),
                           ("SharedAccessKey=", "")])
    if kind == "secret":
        key = rng.choice(["password", "db_password", "DB_PASSWORD", "client_secret", "api_key", "apiKey", "secret",
                          "access_token", "auth_token", "SECRET_KEY", "passwd", "x-api-key", "refresh_token"])
        return rng.choice([(f"{key}={'' if True else ''}", ""), (f'"{key}": "', '"'), (f"{key}: ", ""), (f"{key} = '", "'"),
                           (f"&{key}=", "&page=2"), (f"--{key}=", "")])
    if kind == "us_ssn" and rng.random() < 0.4:
        digits = value.replace("-", "")
        return rng.choice([("SSN: ", ""), ("social security number ", ""), ("ssn=", "")]), digits if rng.random() < 0.5 else value.replace("-", " ")
    return "", ""


@dataclass
class Piece:
    kind: str
    prefix: str
    value: str
    suffix: str


def _piece(kind: str, rng: random.Random) -> Piece:
    if kind == "phone":
        value, needs_label = _phone(rng)
        prefix = rng.choice(["phone: ", "Tel. ", "call me on ", "mobile ", "whatsapp "]) if needs_label or rng.random() < 0.4 else ""
        return Piece(kind, prefix, value, "")
    value = VALUE_GENERATORS[kind](rng)
    label = _labelled(kind, value, rng)
    if kind == "us_ssn" and isinstance(label[0], tuple):
        (prefix, suffix), value = label  # a labelled SSN may be written without dashes
        return Piece(kind, prefix, value, suffix)
    return Piece(kind, label[0], value, label[1])


def _url_piece(kind: str, rng: random.Random) -> tuple[str, list[tuple[str, int, int]]]:
    """URLs that carry a value: credentials in userinfo, tokens in queries, IPs as hosts."""
    if kind == "url_credentials":
        user = rng.choice(["admin", "app", "jane", "svc_etl", ""])
        pw = _rand(rng, ALNUM + "!*", rng.randrange(8, 20))
        scheme = rng.choice(["postgres", "postgresql", "mysql", "mongodb+srv", "redis", "amqp", "https", "ftp"])
        head = f"{scheme}://"
        cred = f"{user}:{pw}"
        text = f"{head}{cred}@db{rng.randrange(9)}.internal.example.com:5432/app"
        return text, [("url_credentials", len(head), len(head) + len(cred))]
    if kind == "ipv4":
        ip = _ipv4(rng)
        head = rng.choice(["http://", "https://", "grpc://"])
        return f"{head}{ip}:{rng.randrange(1024, 65535)}/v1/health", [("ipv4", len(head), len(head) + len(ip))]
    if kind == "ipv6":
        ip = _ipv6(rng)
        head = rng.choice(["http://[", "https://["])
        return f"{head}{ip}]:{rng.randrange(1024, 65535)}/status", [("ipv6", len(head), len(head) + len(ip))]
    if kind == "secret":
        key = rng.choice(["access_token", "api_key", "token", "apikey", "sig", "client_secret"])
        val = _rand(rng, ALNUM, rng.randrange(24, 48))
        head = f"https://api.example.com/v2/items?page=3&{key}="
        return f"{head}{val}&sort=desc", [("secret", len(head), len(head) + len(val))]
    if kind == "google_api_key":
        key = VALUE_GENERATORS[kind](rng)
        head = "https://maps.googleapis.com/maps/api/geocode/json?address=Main+St&key="
        return f"{head}{key}", [(kind, len(head), len(head) + len(key))]
    raise KeyError(kind)


# --- text formats: each wraps one or more pieces -------------------------------------------------

def _join(parts: list[str | Piece]) -> tuple[str, list[tuple[str, int, int]]]:
    out: list[str] = []
    labels: list[tuple[str, int, int]] = []
    pos = 0
    for part in parts:
        if isinstance(part, Piece):
            out.append(part.prefix)
            pos += len(part.prefix)
            labels.append((part.kind, pos, pos + len(part.value)))
            out.append(part.value)
            pos += len(part.value)
            out.append(part.suffix)
            pos += len(part.suffix)
        else:
            out.append(part)
            pos += len(part)
    return "".join(out), labels


def _ts(rng: random.Random) -> str:
    return f"2025-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}T{rng.randrange(24):02d}:{rng.randrange(60):02d}:" \
           f"{rng.randrange(60):02d}.{rng.randrange(1000):03d}Z"


_PROMPT_LEAD = ["Hi, can you help me? My details: ", "Please update the record with ", "User wrote: ",
                "Summarise this email. ", "Translate to French: ", "Customer message: ", "Here it is: ",
                "I pasted my config below\n", "Debug this for me:\n", "Fix the bug, it fails with "]
_PROMPT_TAIL = [" Thanks!", "", " What should I do?", "\nAnything else?", " (sent from my phone)", ". Best, Sam"]
_GLUE = [" and ", ", also ", "; ", "\n", " - ", " or "]


def _fmt_prompt(pieces: list[Piece], rng: random.Random):
    parts: list[str | Piece] = [rng.choice(_PROMPT_LEAD)]
    for i, p in enumerate(pieces):
        if i:
            parts.append(rng.choice(_GLUE))
        parts.append(p)
    parts.append(rng.choice(_PROMPT_TAIL))
    return _join(parts)


def _fmt_log(pieces, rng):
    parts: list[str | Piece] = [f"{_ts(rng)} {rng.choice(['INFO', 'WARN', 'ERROR', 'DEBUG'])} "
                                f"[{rng.choice(['api', 'worker-3', 'billing.sync', 'auth'])}] "
                                f"{rng.choice(['request failed for', 'user updated', 'sending to', 'config loaded', 'retrying'])} "]
    for i, p in enumerate(pieces):
        if i:
            parts.append(rng.choice([" ", " | ", ", "]))
        parts.append(p)
    parts.append(f" latency_ms={rng.randrange(5, 900)} req_id={uuid.UUID(int=rng.getrandbits(128))}")
    return _join(parts)


def _fmt_trace(pieces, rng):
    parts: list[str | Piece] = ["Traceback (most recent call last):\n  File \"/app/service/handlers.py\", line "
                                f"{rng.randrange(10, 400)}, in handle\n    resp = client.post(url, json=payload)\n"
                                f"{rng.choice(['ValueError', 'requests.exceptions.HTTPError', 'RuntimeError', 'KeyError'])}: "
                                f"{rng.choice(['invalid input ', 'could not charge ', 'upstream rejected ', 'bad value for '])}"]
    for i, p in enumerate(pieces):
        if i:
            parts.append(" / ")
        parts.append(p)
    return _join(parts)


def _fmt_json(pieces, rng):
    keys = {"email": "email", "phone": "phone", "card_number": "card", "iban": "iban", "us_ssn": "tax_id",
            "ipv4": "client_ip", "ipv6": "remote_addr", "jwt": "id_token_jwt", "private_key": "pem"}
    parts: list[str | Piece] = ['{"event": "' + rng.choice(["signup", "payment", "login", "update"]) + '", ']
    for i, p in enumerate(pieces):
        if i:
            parts.append(", ")
        if p.prefix or p.suffix:      # labelled values keep their own key
            parts.append(f'"field{i}": "')
            parts.append(Piece(p.kind, p.prefix.replace('"', "'"), p.value, p.suffix.replace('"', "'")))
            parts.append('"')
        else:
            parts.append(f'"{keys.get(p.kind, "value")}": "')
            parts.append(p)
            parts.append('"')
    parts.append(f', "ts": {1700000000 + rng.randrange(10**7)}, "ok": true}}')
    return _join(parts)


def _fmt_code(pieces, rng):
    parts: list[str | Piece] = [rng.choice(["# config.py\n", "// settings.js\n", "import os\n\n", ""])]
    for i, p in enumerate(pieces):
        name = rng.choice(["VALUE", "CONTACT", "TARGET", "DEFAULT", "FALLBACK"]) + str(i)
        if p.prefix or p.suffix:
            parts.append(p)
            parts.append("\n")
        else:
            q = rng.choice(['"', "'"])
            parts.append(f"{name} = {q}")
            parts.append(p)
            parts.append(f"{q}\n")
    parts.append("client = Client(timeout=30)\n")
    return _join(parts)


def _fmt_csv(pieces, rng):
    parts: list[str | Piece] = [f"{rng.randrange(1, 99999)},{rng.choice(['Anna', 'Omar', 'Li', 'Zoe'])},"]
    for i, p in enumerate(pieces):
        if i:
            parts.append(",")
        if p.prefix or p.suffix:
            parts.append('"')
            parts.append(Piece(p.kind, p.prefix.replace('"', "'"), p.value, p.suffix.replace('"', "'")))
            parts.append('"')
        else:
            parts.append(p)
    parts.append(f",{rng.choice(['active', 'closed'])},{rng.randrange(100)}.{rng.randrange(100):02d}")
    return _join(parts)


def _fmt_http(pieces, rng):
    parts: list[str | Piece] = [f"{rng.choice(['POST', 'GET', 'PUT'])} /api/v1/{rng.choice(['users', 'orders', 'charge'])} HTTP/1.1\r\n"
                                "Host: api.example.com\r\nUser-Agent: python-httpx/0.28.1\r\nAccept: */*\r\n"]
    body: list[str | Piece] = []
    for p in pieces:
        if p.kind in ("bearer_token", "basic_auth") and p.prefix.startswith("Authorization"):
            parts.extend([p, "\r\n"])
        elif p.prefix or p.suffix:
            body.extend([p, "\n"])
        else:
            body.extend([f"X-Field-{len(body)}: ", p, "\r\n"])
    parts.append("Content-Type: application/json\r\n\r\n")
    parts.extend(body)
    return _join(parts)


def _fmt_email_header(pieces, rng):
    parts: list[str | Piece] = [f"Received: from mx{rng.randrange(9)}.example.net by mail.example.com; {_ts(rng)}\n"]
    for i, p in enumerate(pieces):
        if p.kind == "email":
            parts.extend([rng.choice(["From: ", "To: ", "Reply-To: ", "Cc: "]), rng.choice(["", "Jane Doe <"]), p,
                          ">\n" if parts[-1:] and False else "\n"])
        else:
            parts.extend([f"X-Note-{i}: ", p, "\n"])
    parts.append(f"Message-ID: <{uuid.UUID(int=rng.getrandbits(128))}@mail.example.com>\nSubject: Re: your order\n")
    return _join(parts)


FORMATS = {"prompt": _fmt_prompt, "log": _fmt_log, "stack_trace": _fmt_trace, "json": _fmt_json, "code": _fmt_code,
           "csv": _fmt_csv, "http": _fmt_http, "email_header": _fmt_email_header}
KINDS = sorted(VALUE_GENERATORS) + ["phone", "url_credentials"]


# --- near-miss negatives ---------------------------------------------------------------------------

def _negative(rng: random.Random) -> str:
    v = rng.randrange(24)
    if v == 0:
        return f"refund for order {_card(rng, valid=False)} was declined"
    if v == 1:
        return f"account ref {_iban(rng, valid=False)} closed"
    if v == 2:
        return f"ssn on file {_ssn(rng, valid=False)} flagged invalid"
    if v == 3:
        return f"upgraded to version {rng.randrange(1, 30)}.{rng.randrange(30)}.{rng.randrange(200)} " \
               f"(build {rng.randrange(1, 9)}.{rng.randrange(10)}.{rng.randrange(10)}.{rng.randrange(10)})"
    if v == 4:
        return f"request_id={uuid.UUID(int=rng.getrandbits(128))} trace={_rand(rng, HEX, 32)}"
    if v == 5:
        return f"sha256 {hashlib.sha256(str(rng.random()).encode()).hexdigest()} md5 {_rand(rng, HEX, 32)}"
    if v == 6:
        return f"{_ts(rng)} job finished at {rng.randrange(1_600_000_000, 1_800_000_000)} " \
               f"({rng.randrange(1_600_000_000_000, 1_800_000_000_000)} ms)"
    if v == 7:
        return f"Order #{rng.randrange(10**6, 10**7)}-{rng.randrange(100, 999)} shipped, tracking " \
               f"1Z{_rand(rng, string.ascii_uppercase + string.digits, 16)}, invoice INV-{rng.randrange(2020, 2026)}-{rng.randrange(10**5):05d}"
    if v == 8:
        return f"commit {_rand(rng, HEX, 40)} (short {_rand(rng, HEX, 7)}) merged into main"
    if v == 9:
        return f"payload: {base64.b64encode(rng.randbytes(rng.randrange(20, 90))).decode()}"
    if v == 10:
        return rng.choice(["api_key=YOUR_API_KEY", "password: ********", "token=${GITHUB_TOKEN}", '"api_key": "<redacted>"',
                           "password = os.environ['DB_PASSWORD']", "secret: {{ .Values.secret }}", "Bearer <token>",
                           "set OPENAI_API_KEY in your environment", "the token count was 1234", "max_tokens=2048",
                           "reset your password via the link", "token_type=Bearer", "password_min_length: 12"])
    if v == 11:
        return f"total {rng.randrange(10**6)}.{rng.randrange(100):02d} EUR, {rng.randrange(100)}% done, " \
               f"{rng.randrange(1, 999)} items, port {rng.randrange(1024, 65535)}"
    if v == 12:
        return f"meeting on {rng.randrange(1, 29):02d}/{rng.randrange(1, 13):02d}/{rng.randrange(2020, 2027)} at " \
               f"{rng.randrange(24):02d}:{rng.randrange(60):02d}, call id {rng.randrange(1000, 9999)}"
    if v == 13:
        return f"coordinates {rng.uniform(-90, 90):.6f}, {rng.uniform(-180, 180):.6f} elevation {rng.randrange(3000)} m"
    if v == 14:
        return f"ISBN 978-{rng.randrange(10)}-{rng.randrange(10, 99)}-{rng.randrange(100000, 999999)}-{rng.randrange(10)}"
    if v == 15:
        return f"{rng.choice(['std::vector<int>', 'crate::module::Type', 'ratio 16:9', 'at 10:30:45', 'a::b::c'])} " \
               f"mac {':'.join(_rand(rng, HEX, 2) for _ in range(6))}"
    if v == 16:
        return f"the task-ask-{_rand(rng, string.ascii_lowercase, 6)} job and the sk- prefix; AKIA alone; ghp_ short"
    if v == 17:
        return f"SKU {rng.randrange(10**11, 10**12)} qty {rng.randrange(1, 9)}, zip {rng.randrange(10000, 99999)}"
    if v == 18:
        return f"temperature {rng.uniform(-20, 40):.1f}C, pressure {rng.randrange(950, 1050)} hPa, " \
               f"probability 0.{rng.randrange(10**15, 10**16)}"
    if v == 19:
        return f"color #{_rand(rng, HEX, 6)} size {rng.randrange(100)}x{rng.randrange(100)} chapter " \
               f"{rng.randrange(1, 20)}.{rng.randrange(1, 9)}.{rng.randrange(1, 9)}.{rng.randrange(1, 9)}"
    if v == 20:
        return f"employee {rng.randrange(10**5, 10**6)} badge {rng.randrange(10**7, 10**8)} in room {rng.randrange(100, 999)}"
    if v == 21:
        return f"bearer of the ticket pays {rng.randrange(10, 99)} EUR; basic authentication is disabled"
    if v == 22:
        return f"log: processed {rng.randrange(10**8, 10**9)} rows in {rng.randrange(1, 99)}.{rng.randrange(99)}s " \
               f"range {rng.randrange(1000, 5000)}-{rng.randrange(5000, 9999)}"
    return f"python {rng.randrange(2, 4)}.{rng.randrange(13)}.{rng.randrange(20)}, numpy 1.{rng.randrange(30)}.{rng.randrange(9)}, " \
           f"node v{rng.randrange(14, 24)}.{rng.randrange(20)}.{rng.randrange(9)}"


def corpus(seed: int = 13, per_kind: int = 150, negatives: int = 2000) -> list[Example]:
    rng = random.Random(seed)
    out: list[Example] = []
    fmt_names = sorted(FORMATS)

    def split(i: int) -> str:
        return "holdout" if hashlib.sha256(f"{seed}:{i}".encode()).digest()[0] < 90 else "tune"  # ~35% held out

    for kind in KINDS:
        for _ in range(per_kind):
            if kind == "url_credentials" or (kind in ("ipv4", "ipv6", "secret", "google_api_key") and rng.random() < 0.3):
                text, labels = _url_piece(kind, rng)
                lead = rng.choice(["GET ", "connecting to ", "DATABASE_URL=", "fetch(", "see "])
                labels = [(k, s + len(lead), e + len(lead)) for k, s, e in labels]
                out.append(Example(lead + text + rng.choice(["", " failed", ")", "\n"]), tuple(labels), "url",
                                   split(len(out))))
                continue
            pieces = [_piece(kind, rng)]
            if rng.random() < 0.35:   # a second entity of another kind in the same text
                other = rng.choice([k for k in KINDS if k not in ("url_credentials", kind)])
                pieces.append(_piece(other, rng))
                rng.shuffle(pieces)
            fmt = rng.choice(fmt_names)
            if kind == "private_key" and fmt == "json":
                value = _pem(rng, escaped=True)
                text, labels = _join(['{"type": "service_account", "project_id": "demo-123", "private_key": "',
                                      Piece(kind, "", value, ""), '", "client_email": "svc@demo-123.iam.gserviceaccount.com"}'])
                labels.append(("email", text.index("svc@"), text.index("svc@") + len("svc@demo-123.iam.gserviceaccount.com")))
            else:
                text, labels = FORMATS[fmt](pieces, rng)
            out.append(Example(text, tuple(labels), fmt, split(len(out))))
    for _ in range(negatives):
        out.append(Example(_negative(rng), (), "negative", split(len(out))))
    return out


@dataclass
class Scores:
    """Per-kind counts. Strict: a label is found when a finding has its kind and exact span.
    Covered: when some finding (any kind) covers its span, i.e. the value is gone from the output."""

    tp: dict[str, int]
    fn: dict[str, int]
    covered: dict[str, int]
    fp: dict[str, int]               # findings matching no label exactly, by the finding's kind
    fp_overlapping: int              # of those, how many overlap a label (a wrong kind or span, not a leak)
    clean_lines: int
    clean_altered: int
    misses: list[str]

    def recall(self, kind: str | None = None, covered: bool = False) -> float:
        hit = self.covered if covered else self.tp
        kinds = [kind] if kind else list(self.tp)
        found = sum(hit.get(k, 0) for k in kinds)
        total = sum(self.tp.get(k, 0) + self.fn.get(k, 0) for k in kinds)
        return found / total if total else 1.0

    def precision(self, kind: str | None = None) -> float:
        kinds = [kind] if kind else list(set(self.tp) | set(self.fp))
        tp = sum(self.tp.get(k, 0) for k in kinds)
        fp = sum(self.fp.get(k, 0) for k in kinds)
        return tp / (tp + fp) if tp + fp else 1.0

    def precision_covered(self) -> float:
        """Findings that overlap a label count as right (kind-agnostic engines)."""
        tp = sum(self.tp.values()) + self.fp_overlapping
        fp = sum(self.fp.values()) - self.fp_overlapping
        return tp / (tp + fp) if tp + fp else 1.0


def score(examples: list[Example], find: Callable[[str], list[tuple[str, int, int]]]) -> Scores:
    s = Scores({}, {}, {}, {}, 0, 0, 0, [])
    for ex in examples:
        found = find(ex.text)
        exact = set(found)
        for kind, start, end in ex.labels:
            s.tp.setdefault(kind, 0)
            s.fn.setdefault(kind, 0)
            if (kind, start, end) in exact:
                s.tp[kind] += 1
            else:
                s.fn[kind] += 1
                s.misses.append(f"missed {kind} {ex.text[start:end]!r} in {ex.text!r}: "
                                f"{[(k, ex.text[a:b]) for k, a, b in found]}")
            if any(a <= start and b >= end for _, a, b in found):
                s.covered[kind] = s.covered.get(kind, 0) + 1
        labels = set(ex.labels)
        for kind, a, b in found:
            if (kind, a, b) not in labels:
                s.fp[kind] = s.fp.get(kind, 0) + 1
                if any(a < e and b > st for _, st, e in labels):
                    s.fp_overlapping += 1
                else:
                    s.misses.append(f"false {kind} {ex.text[a:b]!r} in {ex.text!r}")
        if not ex.labels:
            s.clean_lines += 1
            s.clean_altered += bool(found)
    return s
