"""Fixtures live in tests/support/, one module per real part a test can ask for."""

pytest_plugins = [
    "tests.support.databases",
    "tests.support.processes",
    "tests.support.sandbox",
]
