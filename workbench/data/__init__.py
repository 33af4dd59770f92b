"""Data sources shared by tasks."""
