"""Labelled redaction corpus: (text, [(kind, exact sensitive value), ...]).

True positives in realistic sentences, plus near-miss negatives (non-Luhn 16-digit numbers, order
ids, version strings, dates, IPs, hashes) that must come back untouched. Generated entries use a
fixed seed so the figures are reproducible.
"""

from __future__ import annotations

import random

Labelled = tuple[str, list[tuple[str, str]]]


def _luhn_complete(prefix: str, length: int, rng: random.Random) -> str:
    body = prefix + "".join(str(rng.randrange(10)) for _ in range(length - len(prefix) - 1))
    for check in "0123456789":
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


def _break_luhn(number: str) -> str:
    last = int(number[-1])
    return number[:-1] + str((last + 1) % 10)


def _iban(country: str, bban: str) -> str:
    def num(s: str) -> str:
        return "".join(str(int(c, 36)) for c in s)
    check = 98 - int(num(bban + country + "00")) % 97
    return f"{country}{check:02d}{bban}"


def _group4(s: str) -> str:
    return " ".join(s[i:i + 4] for i in range(0, len(s), 4))


POSITIVES: list[Labelled] = [
    ("Contact me at john.doe@example.com please", [("email", "john.doe@example.com")]),
    ("mail: Anna-Lena.Schmidt+billing@mail.example.de.", [("email", "Anna-Lena.Schmidt+billing@mail.example.de")]),
    ("<bob_99@sub.example.org>", [("email", "bob_99@sub.example.org")]),
    ("cc: a@b.io, c.d@e-f.co.uk", [("email", "a@b.io"), ("email", "c.d@e-f.co.uk")]),
    ("UPPER@EXAMPLE.COM wrote:", [("email", "UPPER@EXAMPLE.COM")]),
    ("Call me on +1 (415) 555-2671 tomorrow", [("phone", "+1 (415) 555-2671")]),
    ("phone 415-555-2671, thanks", [("phone", "415-555-2671")]),
    ("(212) 555-0198 is the desk", [("phone", "(212) 555-0198")]),
    ("UK office +44 20 7946 0958", [("phone", "+44 20 7946 0958")]),
    ("mobile 07700 900123", [("phone", "07700 900123")]),
    ("Tel. +49 30 1234567", [("phone", "+49 30 1234567")]),
    ("ruf an: 030 1234 5678", [("phone", "030 1234 5678")]),
    ("portable: 06 12 34 56 78", [("phone", "06 12 34 56 78")]),
    ("+33 6 12 34 56 78 (FR)", [("phone", "+33 6 12 34 56 78")]),
    ("whatsapp +919876543210", [("phone", "+919876543210")]),
    ("call 212.555.0147 now", [("phone", "212.555.0147")]),
    ("my number is 415 555 2671", [("phone", "415 555 2671")]),
    ("Visa 4111 1111 1111 1111 exp 12/27", [("card_number", "4111 1111 1111 1111")]),
    ("card:4111111111111111", [("card_number", "4111111111111111")]),
    ("MC 5555-5555-5555-4444", [("card_number", "5555-5555-5555-4444")]),
    ("amex 378282246310005.", [("card_number", "378282246310005")]),
    ("Discover 6011 1111 1111 1117", [("card_number", "6011 1111 1111 1117")]),
    ("pay with 5105105105105100 please", [("card_number", "5105105105105100")]),
    ("IBAN DE89 3704 0044 0532 0130 00 for the refund", [("iban", "DE89 3704 0044 0532 0130 00")]),
    ("GB82WEST12345698765432", [("iban", "GB82WEST12345698765432")]),
    ("Konto: FR76 3000 6000 0112 3456 7890 189.", [("iban", "FR76 3000 6000 0112 3456 7890 189")]),
    ("NL91ABNA0417164300 THANKS", [("iban", "NL91ABNA0417164300")]),
    ("use sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcd as key",
     [("openai_key", "sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcd")]),
    ("OPENAI_API_KEY=sk-abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKL",
     [("openai_key", "sk-abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKL")]),
    ("x-api-key: sk-ant-api03-Zz9_abcdefghijklmnopqrstuvwxyz-0123456789AA",
     [("anthropic_key", "sk-ant-api03-Zz9_abcdefghijklmnopqrstuvwxyz-0123456789AA")]),
    ("aws_access_key_id = AKIAIOSFODNN7EXAMPLE", [("aws_access_key", "AKIAIOSFODNN7EXAMPLE")]),
    ("temp creds ASIAY34FZKBOKMUTVV7A", [("aws_access_key", "ASIAY34FZKBOKMUTVV7A")]),
    ("token ghp_1234567890abcdefghijABCDEFGHIJ123456 leaked", [("github_token", "ghp_1234567890abcdefghijABCDEFGHIJ123456")]),
    ("github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUV",
     [("github_token", "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUV")]),
    ("slack xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
     [("slack_token", "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx")]),
    ("xoxp-1234-5678-9012-abcdef012345", [("slack_token", "xoxp-1234-5678-9012-abcdef012345")]),
    ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
     [("jwt", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U")]),
    ("curl -H 'authorization: bearer 0123456789abcdefABCDEF/+=' x", [("bearer_token", "0123456789abcdefABCDEF/+=")]),
    ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
     [("jwt", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U")]),
    ('{"password": "correct-horse-battery"}', [("secret", "correct-horse-battery")]),
    ("server at 192.168.100.200:8080", [("ipv4", "192.168.100.200")]),
    ("Hi, I'm jane@corp.example, card 4242 4242 4242 4242, call +1 415 555 2671.",
     [("email", "jane@corp.example"), ("card_number", "4242 4242 4242 4242"), ("phone", "+1 415 555 2671")]),
]

NEGATIVES: list[str] = [
    "Order 1234567812345678 shipped",               # 16 digits, not Luhn-valid
    "tracking 4111111111111112",                     # Visa-like prefix, Luhn broken
    "order id ORD-2024-000123 confirmed",
    "invoice INV-000045-77 paid",
    "release v1.2.3 and 10.0.19041.1234",
    "python 3.11.7, numpy 1.26.4",
    "meeting on 2024-01-15 at 10:30",
    "dates 15/01/2024 and 01.02.2025 and 2025/03/04",
    "timestamp 2024-06-01T12:34:56Z",
    "sha 3f786850e387550fdab836ed7e6dc881de23001b",
    "uuid 123e4567-e89b-12d3-a456-426614174000",
    "price $1,234,567.89 total",
    "the sku is 0012345678905",
    "ask me anything",
    "email me at john at example dot com",  # obfuscated: out of scope, must not crash
    "user@localhost is not a public address",
    "a risk-based score of 0.9876",
    "port range 8000-9000",
    "call count 1234567",
    "version string 2024.10.1-rc3",
    "sk-short key",
    "task-ant-api is a name",
    "the AKIA prefix alone",
    "ghp_short",
    "Bearer token missing",
    "password: short",
    "DE12 is not an IBAN",
    "GB00WEST12345698765432 wrong checksum",
    "ISBN 978-3-16-148410-0",
    "chapter 12.3.4.5 of the manual",
    "epoch 1717243200000 ms",
    "0.1234567890123456 probability",
    "temperature -12.5 to 30.1",
    "order 9876543210987654 refunded",
    "coordinates 48.8566, 2.3522",
    "build #20240115103000",
    "SKU-4111-1111-1111-1112",
    "file name report_2024_01_15.csv",
    "ratio 1:1000:100000",
]


def _generated(seed: int = 7) -> tuple[list[Labelled], list[str]]:
    rng = random.Random(seed)
    pos: list[Labelled] = []
    neg: list[str] = []
    first = ["anna", "li.wei", "o'neil", "j.smith", "m_rossi", "sara+news", "k-lee"]
    domains = ["example.com", "mail.example.org", "corp.example.co.uk", "uni.example.edu"]
    for i in range(40):
        email = f"{first[i % len(first)].replace(chr(39), '')}{i}@{domains[i % len(domains)]}"
        pos.append((f"Reply to {email} about ticket {1000 + i}", [("email", email)]))
    prefixes = [("4", 16), ("51", 16), ("55", 16), ("2221", 16), ("34", 15), ("37", 15), ("6011", 16), ("35", 16), ("4", 19)]
    for i in range(60):
        prefix, length = prefixes[i % len(prefixes)]
        number = _luhn_complete(prefix, length, rng)
        shown = _group4(number) if i % 3 == 0 else ("-".join(number[j:j + 4] for j in range(0, len(number), 4)) if i % 3 == 1 else number)
        pos.append((f"charge card {shown} for order {rng.randrange(10**6)}", [("card_number", shown)]))
        bad = _break_luhn(number)
        neg.append(f"reference {bad} in the ledger")
    bbans = [("DE", 18, "0123456789"), ("FR", 23, "0123456789"), ("ES", 20, "0123456789"), ("IT", 23, None),
             ("NL", 14, None), ("GB", 18, None)]
    for i in range(36):
        country, n, alphabet = bbans[i % len(bbans)]
        if country == "IT":
            bban = "X" + "".join(str(rng.randrange(10)) for _ in range(n - 1))
        elif country == "NL":
            bban = "ABNA" + "".join(str(rng.randrange(10)) for _ in range(n - 4))
        elif country == "GB":
            bban = "NWBK" + "".join(str(rng.randrange(10)) for _ in range(n - 4))
        else:
            bban = "".join(rng.choice(alphabet) for _ in range(n))
        iban = _iban(country, bban)
        shown = _group4(iban) if i % 2 else iban
        pos.append((f"please wire to {shown}.", [("iban", shown)]))
        broken = iban[:2] + f"{(int(iban[2:4]) + 1) % 100:02d}" + iban[4:]
        neg.append(f"account ref {broken} closed")
    for i in range(30):
        a, b, c = rng.randrange(200, 999), rng.randrange(200, 999), rng.randrange(1000, 9999)
        fmt = [f"({a}) {b}-{c}", f"{a}-{b}-{c}", f"+1 {a} {b} {c}", f"+44 20 {b}{c % 10} {c}"][i % 4]
        pos.append((f"text me at {fmt} after 5pm", [("phone", fmt)]))
        neg.append(f"order {a}{b}{c}{rng.randrange(100000, 999999)} version {a % 10}.{b % 10}.{c % 100}")
    alnum = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    for i in range(20):
        tok = "".join(rng.choice(alnum) for _ in range(40))
        kinds = [("openai_key", f"sk-proj-{tok}"), ("anthropic_key", f"sk-ant-api03-{tok}"),
                 ("github_token", f"ghp_{tok[:36]}"), ("aws_access_key", "AKIA" + tok[:16].upper()),
                 ("slack_token", f"xoxb-{rng.randrange(10**11, 10**12)}-{tok[:24]}")]
        kind, value = kinds[i % len(kinds)]
        pos.append((f"config leaked: {value} (rotate it)", [(kind, value)]))
    return pos, neg


GEN_POS, GEN_NEG = _generated()
ALL_POSITIVES: list[Labelled] = POSITIVES + GEN_POS
ALL_NEGATIVES: list[str] = NEGATIVES + GEN_NEG
