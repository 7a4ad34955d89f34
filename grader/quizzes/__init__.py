"""Quizzes: the quiz files (``model``), students' answers files (``answers``), scoring, and key verification."""
