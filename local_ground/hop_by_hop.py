"""The headers a forwarding proxy must not pass on (RFC 9110 section 7.6.1: the hop-by-hop fields), shared by
the load balancer's proxy and the ECR bridge."""

from __future__ import annotations

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",  # set again from the body actually sent
    }
)
