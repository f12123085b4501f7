"""Every ``synthctl`` subcommand; ``cli`` is the root group."""
