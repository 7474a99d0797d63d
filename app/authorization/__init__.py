"""The authorization endpoint (RFC 6749 §4.1 with PKCE, RFC 7636): the hosted
sign-in and consent pages, authorization codes, and OpenID Connect userinfo."""
