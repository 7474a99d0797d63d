from tests.signing_keys.keyset import restore_signing_keys

__all__ = ["restore_signing_keys"]
