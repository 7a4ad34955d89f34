"""Read the course's spec files and find where its files live; torch-free, for the fast commands."""
