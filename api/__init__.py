"""The HTTP API (FastAPI, versioned under /v1): scores, standing, snapshots, moderation,
operations. Routes are thin: they read and write through storage/ and moderation/."""
