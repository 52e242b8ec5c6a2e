"""Fixtures of the policy unit tests: the fake Jamf Pro server."""

from tests.support.fake_jamf import fake_jamf

__all__ = ["fake_jamf"]
