"""The OAuth 2.0 protocol: the token endpoint and its grants, revocation, metadata."""
