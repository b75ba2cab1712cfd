"""Campaigns, tasks and judgments (pairwise labeling) live here."""
