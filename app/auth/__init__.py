"""Authentication and authorisation against GitLab: `Authorizer` (authorizer.py) over the grant cache
(grant_cache.py) over resolution per credential kind (grants.py), configured by `AuthPolicy`."""

from app.auth.authorizer import Authorizer
from app.auth.policy import AuthPolicy

__all__ = ["AuthPolicy", "Authorizer"]
