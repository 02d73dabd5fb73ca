"""Image building and pushing, daemonless (buildah) for local runs and tests."""
