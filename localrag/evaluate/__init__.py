"""Evaluations on labelled data, each in a throwaway encrypted vault."""
