"""Worked examples of adapters (see adapters/GUIDE.md); each is run by the contract suite."""
