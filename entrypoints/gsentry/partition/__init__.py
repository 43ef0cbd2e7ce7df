"""Distributed partitioning of DGL's chunked graph format, one host's share at a time."""
