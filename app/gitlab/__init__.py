"""Everything the registry asks GitLab: a Protocol (gateway) and its python-gitlab implementation (client)."""
