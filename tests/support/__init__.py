"""Helpers shared by the tests: real servers on loopback, no mocks of our code."""
