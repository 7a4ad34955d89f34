"""Show results: terminal tables, self-contained HTML pages, feedback figures, quiz pages."""
