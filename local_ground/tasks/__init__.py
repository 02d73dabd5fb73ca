"""The local AWS runs ECS tasks for real: containers from their images (buildah), target group
health checks over HTTP, and a local proxy per load balancer; AWS durations scaled by one factor.

Public API: ``EcsTasksRunForReal(bridge, time_scale)``, an extension for ``LocalAWS(extensions=...)``.
"""

from .runner import EcsTasksRunForReal
from .timescale import TimeScale

__all__ = ["EcsTasksRunForReal", "TimeScale"]
