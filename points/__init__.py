"""The village points engine: the domain (org, schemes, ledger, claims, shop, cycles, boards)."""
