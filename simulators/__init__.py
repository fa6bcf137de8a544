"""Ideal functionalities and security simulators for the SURE protocols.

``ideal`` contains the functionalities (1-out-of-2 OT, 1-out-of-n OT, matching, the whole SURE
repair). The other modules contain, for each protocol and each corruptible party, a simulator
that builds that party's view, in the format of ``Transcript.view(party)``, from the party's
input and its ideal output alone. Each module's docstring states the simulation argument it
follows and its source.
"""
