"""The accounts service: registration, authentication, profiles, OAuth2 authorization server."""
