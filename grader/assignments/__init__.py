"""Exercises and quizzes as one kind of assignment: the catalog, the recorded version, and student notebooks."""
