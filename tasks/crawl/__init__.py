"""Bounded, safe fetching and validation of the posters and plots an item catalog points to.

``safety`` decides which URLs may be fetched at all, ``fetch`` gets the bytes (HTTP or confined local
files) under concurrency, size, time and redirect limits, ``images`` and ``text`` validate what came
back, and ``blobs`` stores accepted bytes by their sha256. The crawl stage (``tasks.crawl.stage``)
wires them to the lake.
"""
