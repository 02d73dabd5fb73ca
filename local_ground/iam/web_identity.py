"""STS AssumeRoleWithWebIdentity as AWS checks it, before moto issues the role's credentials.

1. The token is a JWT whose `iss` names an IAM OIDC provider of the role's account.
2. `aud` is one of that provider's client ids ("Incorrect token audience").
3. The signature verifies with a key the issuer publishes (discovery document -> jwks_uri), RS256.
4. The token has not expired (ExpiredTokenException).
5. The role's trust policy allows sts:AssumeRoleWithWebIdentity for Federated = the provider's ARN,
   with condition keys `HOST:aud`, `HOST:sub` (and `HOST:amr`-free, as for any non-Cognito issuer);
   otherwise AccessDenied "Not authorized to perform sts:AssumeRoleWithWebIdentity".
The issuer is fetched over HTTP; ``issuer_hosts`` maps an issuer's host to where it listens locally.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import jwt
from moto.iam.models import iam_backends
from moto.utilities.utils import get_partition

from .errors import Refusal
from .policy import Decision, Request, evaluate

Fetch = Callable[[str], dict[str, Any]]
NOT_AUTHORIZED = "Not authorized to perform sts:AssumeRoleWithWebIdentity"
NO_KEY = (
    "Couldn't retrieve verification key from your identity provider, "
    "please reference AssumeRoleWithWebIdentity documentation for requirements"
)


def invalid(message: str) -> Refusal:
    return Refusal(400, "InvalidIdentityToken", message, json_protocol=False)


def denied() -> Refusal:
    return Refusal(403, "AccessDenied", NOT_AUTHORIZED, json_protocol=False)


def http_fetcher(issuer_hosts: Mapping[str, str]) -> Fetch:
    """GET a JSON document, sending an issuer's host to its local address."""

    def fetch(url: str) -> dict[str, Any]:
        parts = urlsplit(url)
        base = issuer_hosts.get(parts.netloc)
        target = f"{base.rstrip('/')}{parts.path}" if base else url
        with urllib.request.urlopen(target, timeout=5) as answer:  # nosec B310 # the issuer's own http(s) URL
            document: dict[str, Any] = json.loads(answer.read())
        return document

    return fetch


def _signing_key(issuer: str, kid: str | None, fetch: Fetch) -> Any:
    try:
        discovery = fetch(f"{issuer.rstrip('/')}/.well-known/openid-configuration")
        keys = fetch(str(discovery["jwks_uri"]))["keys"]
    except Exception:  # noqa: BLE001 - unreachable issuer or bad documents: AWS says the same
        raise invalid(NO_KEY) from None
    for key in keys:
        if key.get("kid") == kid:
            return jwt.PyJWK(key).key
    raise invalid(NO_KEY)


def verify(token: str, role_arn: str, region: str, fetch: Fetch, now: float | None = None) -> dict[str, Any]:
    """The token's claims, once AWS's checks pass; raises a Refusal in STS's shape otherwise."""
    try:
        header = jwt.get_unverified_header(token)
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise invalid(
            "The ID Token provided is not a valid JWT. (You may see this error if you sent an Access Token)"
        ) from None
    issuer = str(claims.get("iss", ""))
    host_path = urlsplit(issuer).netloc + urlsplit(issuer).path
    account = role_arn.split(":")[4] if role_arn.count(":") >= 5 else ""
    backend = iam_backends[account][get_partition(region)] if account else None
    provider = None
    if backend is not None:
        provider = next((p for p in backend.open_id_providers.values() if p.url == host_path), None)
    if provider is None:
        raise invalid(f"No OpenIDConnect provider found in your account for {issuer}")
    audiences = claims.get("aud")
    audiences = audiences if isinstance(audiences, list) else [audiences]
    if not any(a in provider.client_id_list for a in audiences):
        raise invalid("Incorrect token audience")
    if header.get("alg") != "RS256":
        raise invalid(NO_KEY)
    key = _signing_key(issuer, header.get("kid"), fetch)
    try:
        jwt.decode(token, key, algorithms=["RS256"], options={"verify_exp": False, "verify_aud": False})
    except jwt.InvalidSignatureError:
        raise invalid("Signature verification failed: the token was not signed by the identity provider") from None
    except jwt.PyJWTError as error:
        raise invalid(f"The ID Token provided is not a valid JWT ({error})") from None
    current = int(now if now is not None else time.time())
    expires = int(claims.get("exp", 0))
    if current >= expires:
        raise Refusal(
            400,
            "ExpiredTokenException",
            f"Token expired: current date/time {current} must be before the expiration date/time{expires}",
            json_protocol=False,
        )
    try:
        role = backend.get_role_by_arn(role_arn) if backend is not None else None
    except Exception:  # noqa: BLE001 - moto's NotFoundException: no such role, same answer as a refusal
        role = None
    if role is None:
        raise denied()
    context = {f"{host_path}:aud": [str(a) for a in audiences], f"{host_path}:sub": [str(claims.get("sub", ""))]}
    request = Request("sts:AssumeRoleWithWebIdentity", role_arn, context, principal={"Federated": [provider.arn]})
    if evaluate([role.assume_role_policy_document], request) is not Decision.ALLOW:
        raise denied()
    return claims
