"""Tests of the margin package, mirroring its layout."""
