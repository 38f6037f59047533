"""target_dialfire_webhook."""
