"""Runtime of the SURE testbed: sans-IO parties, runners, simulated networks and reports."""
