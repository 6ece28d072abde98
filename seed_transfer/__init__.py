"""Transfer evaluation of any checkpoint (SEED students, SSL models, supervised, random init)."""
