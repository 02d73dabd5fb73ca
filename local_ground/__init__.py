"""The local ground: AWS, an OCI registry behind ECR, and GitHub on 127.0.0.1, for tests, the demo
and `pipeline local`. Installed with the `[local]` extra; the `pipeline` package imports it only
inside the commands that need it.

    aws.py              moto in server mode with named extensions (moto_extensions/, one patch point)
    registry.py         Debian's docker-registry with htpasswd auth
    ecr_bridge.py       ECR's data plane (login, push, tag immutability) in front of the registry
    github_server.py    GitHub's REST endpoints the pipeline uses
    tasks/              ECS tasks run for real from their images, health checks, a local load balancer
    python_base.py      a Debian Python base image made with debootstrap (no image can be pulled here)
    ground.py           all of it in one context manager
    demo.py             `pipeline demo`
"""
