"""dialfire_sandbox."""
