"""What is kept: the SQLite gradebook and its migrations, exports for learning-management systems, the Gradescope zip."""
