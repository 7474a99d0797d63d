"""Consents: what an account allowed a third-party client, remembered per scope set."""
