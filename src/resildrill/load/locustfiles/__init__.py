"""Locustfiles the driver hands to ``locust -f``: never imported by the runner."""
