"""GitHub Actions as an OIDC issuer: RS256 ID tokens with GitHub's claims, its discovery document and JWKS.

The local GitHub serves `/.well-known/openid-configuration` and `/.well-known/jwks` from an
``OidcIssuer``; tokens name GitHub's real issuer (`https://token.actions.githubusercontent.com`),
so the ci-access template's provider URL stays the real one and the local STS reaches the issuer
through ``issuer_hosts`` (a hosts-file entry, nothing more).

`sub` follows GitHub's rule: `repo:O/R:environment:NAME` for a job with an environment,
`repo:O/R:pull_request` for pull_request events, else `repo:O/R:ref:REF`.
"""

from __future__ import annotations

import base64
import time
import uuid
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
DEFAULT_AUDIENCE = "sts.amazonaws.com"


def _b64(number: int) -> str:
    raw = number.to_bytes((number.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def subject(repository: str, *, event_name: str, ref: str, environment: str | None) -> str:
    if environment:
        return f"repo:{repository}:environment:{environment}"
    if event_name in ("pull_request", "pull_request_target"):
        return f"repo:{repository}:pull_request"
    return f"repo:{repository}:ref:{ref}"


class OidcIssuer:
    """One signing key (RS256, a kid), the discovery document, the JWKS and token minting."""

    def __init__(self, issuer: str = GITHUB_ISSUER) -> None:
        self.issuer = issuer
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = uuid.uuid4().hex

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "jwks_uri": f"{self.issuer}/.well-known/jwks",
            "subject_types_supported": ["public", "pairwise"],
            "response_types_supported": ["id_token"],
            "claims_supported": ["sub", "aud", "exp", "iat", "iss", "jti", "nbf", "ref", "repository", "environment"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid"],
        }

    def jwks(self) -> dict[str, Any]:
        numbers = self.key.public_key().public_numbers()
        return {
            "keys": [
                {
                    "kty": "RSA",
                    "alg": "RS256",
                    "use": "sig",
                    "kid": self.kid,
                    "n": _b64(numbers.n),
                    "e": _b64(numbers.e),
                }
            ]
        }

    def claims(
        self,
        repository: str,
        *,
        event_name: str = "push",
        ref: str = "refs/heads/main",
        environment: str | None = None,
        workflow: str = ".github/workflows/release.yml",
        audience: str = DEFAULT_AUDIENCE,
        lifetime: int = 300,
        now: float | None = None,
    ) -> dict[str, Any]:
        """The claims GitHub puts in a job's ID token (the ones trust policies and people look at)."""
        issued = int(now if now is not None else time.time())
        owner = repository.split("/", 1)[0]
        claims: dict[str, Any] = {
            "jti": uuid.uuid4().hex,
            "sub": subject(repository, event_name=event_name, ref=ref, environment=environment),
            "aud": audience,
            "ref": ref,
            "ref_type": "tag" if ref.startswith("refs/tags/") else "branch",
            "repository": repository,
            "repository_owner": owner,
            "event_name": event_name,
            "workflow_ref": f"{repository}/{workflow}@{ref}",
            "job_workflow_ref": f"{repository}/{workflow}@{ref}",
            "runner_environment": "github-hosted",
            "iss": self.issuer,
            "nbf": issued - 5,
            "iat": issued,
            "exp": issued + lifetime,
        }
        if environment:
            claims["environment"] = environment
        return claims

    def sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": self.kid})

    def token(self, repository: str, **kwargs: Any) -> str:
        return self.sign(self.claims(repository, **kwargs))
