"""NEAR side of Renown: the RPC seam (client.py) and the snapshot publisher (publisher.py)."""
