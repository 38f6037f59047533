"""target_dialfire_sql."""
