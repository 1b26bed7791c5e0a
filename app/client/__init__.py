"""The client side: the commands that run on a laptop or in a CI job (doctor, upload, download,
import-generic-packages) and what they share. Nothing here imports the server's layers, flask or its SDKs:
`pip install gitlab-data-registry` without the `server` extra runs all of it."""
