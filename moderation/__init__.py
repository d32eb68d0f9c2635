"""Moderation: the flag lifecycle (pure rules) and the moderation service over storage."""
