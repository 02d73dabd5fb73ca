"""Command groups of the `pipeline` CLI kept in modules of their own; each imports its work lazily."""
