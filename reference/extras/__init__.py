"""Beyond the course: the smallest-MLP search (``tiny_search``) and many seeds trained at once (``vectorised``)."""
