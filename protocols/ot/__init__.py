"""Oblivious transfer: base OT over Ed25519, IKNP/KOS OT extension and 1-out-of-n OT.

Every protocol here is a pair of sans-IO party coroutines (sender and receiver) that yield
``testbed.effects`` and return their outputs, so the same code runs in memory, in the network
simulator and over TCP. Modules:

* ``group``: the prime-order subgroup of Ed25519 through libsodium, with point validation;
* ``base``: base 1-out-of-2 random OT (Naor–Pinkas, semi-honest; Masny–Rindal, malicious);
* ``hashing``: fixed-key AES correlation-robust hash and AES-CTR pseudo-random generator;
* ``bitmatrix``: bit-matrix transpose for OT extension;
* ``gf128``: GF(2^128) inner products for the KOS correlation check;
* ``extension``: IKNP and KOS OT extension (random, correlated and chosen-message OT);
* ``one_of_n``: 1-out-of-n OT of large payloads from a Naor–Pinkas key tree;
* ``codec``: message framing and parsing shared by all of them.
"""
