"""Sandbox fixtures: replaced by the sandbox engineer."""
