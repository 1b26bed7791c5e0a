"""Value objects shared by every layer, one module per concern: identity (credentials, actors,
grants), projects (records and the quota rules), paths, objects, upload_sessions, sizes."""
