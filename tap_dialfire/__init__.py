"""tap_dialfire."""
