"""Browser sessions: the authorization server's own sign-in state, carried by a cookie."""
