"""Generic-MPC baseline: linear-scan matching and the TIME update of every layer inside MPyC."""
