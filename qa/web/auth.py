"""The API key that guards the write routes (`POST`/`DELETE /api/articles`).

Reading stays open to everyone. Writing needs `QA_API_KEY` configured on the
server (else 403: ingest over HTTP is disabled) and the same key on the request,
as `Authorization: Bearer <key>` or `X-API-Key: <key>` (else 401). The key is
compared in constant time and never logged, echoed or put in an error.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from qa.errors import IngestDisabled, Unauthorized
from qa.web.deps import SettingsDep

# auto_error=False: a missing key must be our 401 JSON error, not FastAPI's own 403.
_bearer = HTTPBearer(auto_error=False, description="`Authorization: Bearer <QA_API_KEY>`")
_api_key_header = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="`X-API-Key: <QA_API_KEY>`"
)

DISABLED = "ingest over HTTP is disabled; set QA_API_KEY on the server to enable it"
UNAUTHORIZED = (
    "missing or wrong API key: send it as `Authorization: Bearer <key>` or `X-API-Key: <key>`"
)


def require_api_key(
    settings: SettingsDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    header_key: Annotated[str | None, Depends(_api_key_header)],
) -> None:
    expected = settings.api_key.get_secret_value().encode() if settings.api_key else b""
    if not expected:  # unset, or set to an empty string: never match an empty key
        raise IngestDisabled(DISABLED)
    offered = [key for key in (bearer.credentials if bearer else None, header_key) if key]
    # Header values arrive decoded as Latin-1: encoding them back gives the bytes sent.
    # Every offered key is compared, in constant time each, so timing shows nothing.
    matches = [hmac.compare_digest(key.encode("latin-1"), expected) for key in offered]
    if not any(matches):
        raise Unauthorized(UNAUTHORIZED)
