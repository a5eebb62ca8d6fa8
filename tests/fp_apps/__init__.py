"""Throwaway apps for tests/test_false_positives.py, installed only by the tests that use them."""
