"""URLs the user configures (AWS_ENDPOINT_URL, GITHUB_API_URL), checked before a client trips over them."""

from __future__ import annotations

from urllib.parse import urlsplit


def is_http_url(url: str) -> bool:
    """An http(s) URL with a host and, if it names one, a numeric port."""
    try:
        parts = urlsplit(url)
        _ = parts.port  # "host:abc" raises here
    except ValueError:  # "http://[::1" (an unclosed IPv6 host) or a port that is not a number
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)
