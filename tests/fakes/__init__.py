"""Fake upstream servers that speak the real wire formats, started on 127.0.0.1 ports."""
