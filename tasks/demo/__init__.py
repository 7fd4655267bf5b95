"""Demo data sources: real catalog data from installed packages, rendered posters, synthetic dialogues.

Where no crawlable catalog or real dialogues exist (offline machines, CI), the demo builds them from
data that ships on PyPI:

- ``catalog``: MovieLens-100K items (``recbole``) joined with a CC0 movie database (``bokeh-sampledata``).
- ``posters``: deterministic poster images rendered from item metadata.
- ``synthetic``: ReDial-format dialogues derived from MovieLens rating sequences.
"""
