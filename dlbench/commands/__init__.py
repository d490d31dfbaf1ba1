"""CLI commands beyond the core, each in its own module and imported only when invoked."""
