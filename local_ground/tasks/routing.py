"""How an Application Load Balancer's listener decides what to do with a request, from moto's records.

AWS behaviour reproduced ("Listeners for your Application Load Balancers", "Listener rules"):
- rules are evaluated in priority order (lowest first), the default actions last; a rule matches
  when all its conditions do (path-pattern and host-header with `*` and `?` wildcards, and
  http-request-method; other condition types never match here);
- a forward action with several target groups picks one per request in proportion to the weights
  (ForwardConfig.TargetGroups[].Weight; a group of weight 0 receives nothing);
- redirect and fixed-response actions answer without a target;
- the load balancer's attributes: idle_timeout.timeout_seconds (default 60) bounds the wait for the
  target's response (504 after it), routing.http.drop_invalid_header_fields.enabled (default false)
  removes header fields whose names are not alphanumerics and hyphens ("Application Load Balancer
  attributes", https://docs.aws.amazon.com/elasticloadbalancing/latest/application/application-load-balancers.html#load-balancer-attributes).
The HTTP listener is the one served (port 80 first); HTTPS is not terminated locally.
"""

from __future__ import annotations

import fnmatch
import random
import re
from dataclasses import dataclass, field
from typing import Any

DEFAULT_IDLE_TIMEOUT = 60.0
VALID_HEADER_NAME = re.compile(r"^[A-Za-z0-9-]+$")
_RNG = random.Random()  # nosec B311 # weighted routing picks a target group, no secret


@dataclass(frozen=True)
class Action:
    """What the listener does with one request: forward to a group, redirect, or answer itself."""

    kind: str  # forward | redirect | fixed-response
    groups: tuple[tuple[str, int], ...] = ()  # (target group ARN, weight)
    status: int = 503
    body: str = ""
    content_type: str = "text/plain"
    location: str = ""

    def pick_group(self, rng: random.Random | None = None) -> str | None:
        rng = rng or _RNG
        weighted = [(arn, weight) for arn, weight in self.groups if weight > 0]
        if not weighted:
            return None
        total = sum(weight for _, weight in weighted)
        point = rng.uniform(0, total)
        for arn, weight in weighted:
            point -= weight
            if point <= 0:
                return arn
        return weighted[-1][0]


@dataclass(frozen=True)
class Rule:
    priority: int
    conditions: tuple[dict[str, Any], ...]
    action: Action

    def matches(self, method: str, host: str, path: str) -> bool:
        return all(_condition_matches(c, method, host, path) for c in self.conditions)


@dataclass(frozen=True)
class Routing:
    """A listener's rules and default action, and the load balancer's attributes (durations scaled)."""

    rules: tuple[Rule, ...] = ()
    default: Action = field(default_factory=lambda: Action("fixed-response", status=503))
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT
    drop_invalid_header_fields: bool = False

    def action_for(self, method: str, host: str, path: str) -> Action:
        for rule in sorted(self.rules, key=lambda r: r.priority):
            if rule.matches(method, host, path):
                return rule.action
        return self.default


def _values(condition: dict[str, Any], config_key: str) -> list[str]:
    config = condition.get(config_key) or {}
    return [str(v) for v in (config.get("Values") or condition.get("Values") or [])]


def _condition_matches(condition: dict[str, Any], method: str, host: str, path: str) -> bool:
    kind = condition.get("Field")
    path_only = path.split("?", 1)[0]
    if kind == "path-pattern":
        return any(fnmatch.fnmatchcase(path_only, p) for p in _values(condition, "PathPatternConfig"))
    if kind == "host-header":
        name = host.split(":", 1)[0].lower()
        return any(fnmatch.fnmatchcase(name, p.lower()) for p in _values(condition, "HostHeaderConfig"))
    if kind == "http-request-method":
        return method.upper() in [v.upper() for v in _values(condition, "HttpRequestMethodConfig")]
    return False


def action_of(data: dict[str, Any]) -> Action | None:
    """One moto action record -> Action (None for types not served here, e.g. authenticate-*)."""
    kind = data.get("Type")
    if kind == "forward":
        groups = (data.get("ForwardConfig") or {}).get("TargetGroups") or []
        if groups:
            pairs = tuple((str(g["TargetGroupArn"]), int(g.get("Weight", 1))) for g in groups)
        else:
            pairs = ((str(data["TargetGroupArn"]), 1),) if data.get("TargetGroupArn") else ()
        return Action("forward", groups=pairs)
    if kind == "fixed-response":
        config = data.get("FixedResponseConfig") or {}
        return Action(
            "fixed-response",
            status=int(config.get("StatusCode", 503)),
            body=str(config.get("MessageBody", "")),
            content_type=str(config.get("ContentType", "text/plain")),
        )
    if kind == "redirect":
        config = data.get("RedirectConfig") or {}
        protocol = str(config.get("Protocol", "#{protocol}")).lower()
        host, port = config.get("Host", "#{host}"), config.get("Port", "#{port}")
        path, query = config.get("Path", "/#{path}"), config.get("Query", "#{query}")
        location = f"{protocol}://{host}:{port}{path}" + (f"?{query}" if query else "")
        code = str(config.get("StatusCode", "HTTP_301")).removeprefix("HTTP_")
        return Action("redirect", status=int(code), location=location)
    return None


def _first_action(actions: list[Any]) -> Action | None:
    for action in sorted(actions, key=lambda a: int(getattr(a, "data", {}).get("Order", 0) or 0)):
        found = action_of(getattr(action, "data", action))
        if found is not None:
            return found
    return None


def routing_of(load_balancer: Any, scale: float, port: int | None = None) -> Routing:
    """The HTTP listener's routing (the one on `port` when given, e.g. a test listener) and the
    balancer's attributes, durations multiplied by `scale`."""
    attrs = getattr(load_balancer, "attrs", {}) or {}
    idle = float(attrs.get("idle_timeout.timeout_seconds") or DEFAULT_IDLE_TIMEOUT) * scale
    drop = str(attrs.get("routing.http.drop_invalid_header_fields.enabled", "false")).lower() == "true"
    listeners = sorted(load_balancer.listeners.values(), key=lambda x: (int(x.port) != 80, int(x.port)))
    http = [x for x in listeners if str(getattr(x, "protocol", "HTTP")).upper() == "HTTP"] or listeners
    if port is not None:
        http = [x for x in listeners if int(x.port) == port]
    if not http:
        return Routing(idle_timeout=idle, drop_invalid_header_fields=drop)
    listener = http[0]
    rules = []
    for rule in listener.rules.values():
        action = _first_action(rule.actions)
        if action is not None and not getattr(rule, "is_default", False):
            rules.append(Rule(int(rule.priority), tuple(rule.conditions or ()), action))
    default = _first_action(listener.default_actions) or Action("fixed-response", status=503)
    return Routing(tuple(rules), default, idle, drop)


def kept_headers(headers: list[tuple[str, str]], routing: Routing) -> list[tuple[str, str]]:
    if not routing.drop_invalid_header_fields:
        return headers
    return [(k, v) for k, v in headers if VALID_HEADER_NAME.match(k)]
