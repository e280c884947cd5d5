"""The imperative shell's database side: the only code that touches asyncpg."""
