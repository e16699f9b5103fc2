"""ccstack: the controller of the Claude Code sandbox stack."""
