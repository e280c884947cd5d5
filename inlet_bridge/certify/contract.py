"""Which facts about Inlet does a certification run rest on without Inlet having published them?

The assumed items of `docs/contract.md`, section 2 (A1, A2, ...), word for word: the report
lists them at its top, so a reviewer sees what the evidence takes for granted. A test keeps
this list and the document equal.
"""

from __future__ import annotations

ASSUMED_INLET: tuple[tuple[str, str], ...] = (
    ("A1", "One base URL per environment (production, test)."),
    (
        "A2",
        "Authentication is `Authorization: Bearer <key>`, with the key of the property the"
        " grant belongs to.",
    ),
    ("A3", "Calls are JSON `POST`s to `/GrantAccess`, `/UpdateAccess` and `/RevokeAccess`."),
    (
        "A4",
        "Request field names: `partner`, `bookingId`, `externalId`, `locks`, `start` and `end`"
        " (ISO 8601 with an offset), `guestName`, `email`.",
    ),
    ("A5", "Leaving out `email`, `phoneNumber` and `countryCode` makes Inlet message nobody."),
    (
        "A6",
        "A repeated `externalId` is answered with the grant Inlet already holds, unchanged (an"
        " idempotent create).",
    ),
    (
        "A7",
        "A revoked grant may or may not be handed back for a repeated `externalId`, so a new"
        " grant after a revocation uses a new `externalId` generation: `<grant key>:#2`,"
        " `:#3`, ... (the first generation is the grant key itself; IDs never hold `:`, so no"
        " stay's key can pass for another stay's generation).",
    ),
    (
        "A8",
        "`UpdateAccess` takes `ReferenceId` plus the same fields as `GrantAccess` and may answer"
        " with a new code and link; `regenerate: true` asks for a new code (a re-sync).",
    ),
    (
        "A9",
        "Inlet keeps the code when an `UpdateAccess` changes only the locks or times (a room"
        " change), and messages the guest again when it changes the contact details.",
    ),
    (
        "A10",
        '`RevokeAccess` takes `{"ReferenceId": ...}`; a 404 means the grant is already gone.',
    ),
    (
        "A11",
        "Every answer is JSON with `success`, `message`, and on failure `retryable`;"
        " `ReferenceId` and `code` may be strings or numbers.",
    ),
    (
        "A12",
        "Without `retryable`, the status decides: timeouts, connection errors, 408, 429 and 5xx"
        " are temporary, other 4xx permanent; a 200 with `success: false` is a failure.",
    ),
    (
        "A13",
        "Credentials are per customer, so every call on a grant uses the property, key and base"
        " URL it was made under, and a 404 on a revocation counts as gone only from that account.",
    ),
    (
        "A14",
        "Inlet refuses a grant whose start is more than 72 h ahead with a 4xx and a `message`.",
    ),
)

CONTRACT_DOC = "docs/contract.md"
