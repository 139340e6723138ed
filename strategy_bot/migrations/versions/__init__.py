"""One file per schema version, oldest first; each is frozen once released (add a new one instead)."""
