"""The Carol client core: connection settings, auth, endpoints, the request pipeline and its two drivers."""
