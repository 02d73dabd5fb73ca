"""Ship machine-learning model servers to Amazon ECS from a git tag."""

__version__ = "0.1.0"
