"""Cryptography behind one door each: argon2 (passwords), jose (jwt), AES-GCM (sealing)."""
