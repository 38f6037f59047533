"""An emulated Dialfire API for tests: seeded data, a virtual clock, faults and a test oracle."""

from dialfire_sandbox.sandbox import Sandbox

__all__ = ["Sandbox"]
