"""Tests of the study layer (experiments/)."""
