"""Authorisation: the scope catalogue, who a token speaks for, and the gate."""
