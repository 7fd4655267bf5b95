"""Dialogue sources: readers that turn raw files into source-neutral dialogues, and item linking."""
