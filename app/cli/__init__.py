"""The `gatehouse` command (a console script): serve, migrate, create-admin,
reset-password, rotate-key, check-config, calibrate, openapi.

It sits above the app: it imports services and settings, and nothing in the
app imports it (tests/cli/test_layering.py checks).
"""
