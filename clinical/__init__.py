"""Clinical knowledge as pure Python: vocabulary, instruments, dosing, catalogue, rules engine.

Nothing in this package imports Django or touches a database, so every rule can be tested
with plain values and run from the command line (SPEC §5).
"""
