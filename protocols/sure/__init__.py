"""SURE: two-party matching, oblivious retrieval of the matched fix, and local repair."""
