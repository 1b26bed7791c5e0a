"""Run the GitLab simulator: python -m scripts.gitlab_sim [--seed FILE] [--port N] [--oauth-redirect-uri U]
(the registry's /-/auth/callback, for the seeded OAuth application)."""

from __future__ import annotations

import argparse
from pathlib import Path

from werkzeug.serving import make_server

from scripts.gitlab_sim import DEFAULT_SEED, create_simulator, load_world

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--seed", type=Path, default=DEFAULT_SEED)
parser.add_argument("--host", default="127.0.0.1")
parser.add_argument("--port", type=int, default=8929)
parser.add_argument("--oauth-redirect-uri", help="the registry's /-/auth/callback, for the seeded OAuth app")
args = parser.parse_args()
world = load_world(args.seed)
if args.oauth_redirect_uri:
    for app in world.oauth_apps.values():
        app["redirect_uri"] = args.oauth_redirect_uri
server = make_server(args.host, args.port, create_simulator(world), threaded=True)
world.url = f"http://{args.host}:{server.server_port}"
print(f"GitLab simulator on http://{args.host}:{server.server_port}", flush=True)
server.serve_forever()
