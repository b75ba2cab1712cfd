"""Trained reward and cost models (the model registry) live here."""
