"""The pure scoring core: domain types, trust graph, propagation.

Nothing in this package performs I/O or imports another Renown package, so the
model can be tested, benchmarked and reasoned about in isolation.
"""
